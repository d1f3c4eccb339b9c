"""Model frontends: ONNX, Caffe and Ember's own textual IR, behind one ``load_model``."""

from __future__ import annotations

import os

from compiler.diagnostics import EmberError


def load_model(path: str, **kw):
    """Load any model Ember reads as a Graph, choosing the frontend by file extension.

    ``.onnx`` -> ``frontends.onnx.import_model(path, **kw)``; ``.prototxt`` ->
    ``frontends.caffe.import_model(path, **kw)``; ``.ir`` -> ``compiler.load_ir``.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".onnx":
        from .onnx import import_model

        return import_model(path, **kw)
    if ext == ".prototxt":
        try:
            from .caffe import import_model as caffe_import
        except ImportError:
            try:
                from .caffe.importer import import_model as caffe_import
            except ImportError:
                raise EmberError("the Caffe frontend is not available", file=path) from None
        return caffe_import(path, **kw)
    if ext == ".ir":
        from compiler import load_ir

        if kw:
            raise EmberError(f"options {sorted(kw)} do not apply to .ir files", file=path)
        return load_ir(path)
    raise EmberError(f"unknown model file extension '{ext}' (expected .onnx, .prototxt or .ir)", file=path)


__all__ = ["load_model"]
