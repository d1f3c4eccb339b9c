"""Ember's TVM backend: op lowering to TE/topi, CPU schedules, kernel objects (see backend.py)."""

from . import backend  # noqa: F401  (registers the x86-64 backend)
