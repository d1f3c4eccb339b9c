"""The Caffe frontend: ``import_model(prototxt, caffemodel=None) -> Graph``, no Caffe install needed.

``schema.py`` builds Ember's own Caffe message schema with protobuf's
descriptor API; ``loader.py`` reads prototxt/caffemodel files;
``importer.py`` walks the net; ``layers/`` holds one converter per layer
type (the ``caffe.*`` ops they emit are declared in ``compiler/ops/caffe.py``); ``writer.py`` writes Caffe
files from Python descriptions (tests use it to build models).
"""

from .importer import import_model

__all__ = ["import_model"]
