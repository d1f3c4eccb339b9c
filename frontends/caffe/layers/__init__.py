"""Caffe layer converters, one module per family; importing registers them all."""

from . import activation, conv, norm, ssd, tensor  # noqa: F401
