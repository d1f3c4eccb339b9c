"""The ONNX frontend: ``import_model(path_or_proto, input_shapes=...) -> Graph``
and the exporter ``export_model(graph) -> ModelProto``.

See ``importer.py`` for the walk and ``converters/`` for the per-op-version
normalisers that map older opsets to the newest semantics.
"""

from .exporter import export_model
from .importer import import_model

__all__ = ["import_model", "export_model"]
