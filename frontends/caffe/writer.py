"""Writing Caffe models from Python descriptions: ``.prototxt`` text plus ``.caffemodel`` weights.

Ember's tests build their Caffe models with this writer and read them back
with both Ember and OpenCV, which shows that Ember's schema produces files
another Caffe reader accepts.  Example::

    net = NetSpec("tiny", inputs={"data": (1, 3, 8, 8)})
    net.layer("conv", "Convolution", ["data"], ["conv"], blobs=[w, b],
              convolution_param={"num_output": 4, "kernel_size": [3]})
    net.layer("relu", "ReLU", ["conv"], ["conv"])            # in place
    net.save("tiny.prototxt", "tiny.caffemodel")

``input_form`` chooses how inputs are declared (``input_shape``,
``input_dim`` or ``layer`` for Input layers); ``legacy=True`` writes V1
``layers`` with enum types and 4-D num/channels/height/width blob shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from google.protobuf import json_format, text_format

from . import schema
from .loader import V1_TO_TYPE

TYPE_TO_V1 = {t: v1 for v1, t in V1_TO_TYPE.items()}


@dataclass
class LayerSpec:
    """One layer: its connections, trained blobs, parameter messages (as dicts) and phase."""

    name: str
    type: str
    bottom: list[str]
    top: list[str]
    blobs: list[np.ndarray] = field(default_factory=list)
    params: dict = field(default_factory=dict)  # e.g. {"convolution_param": {...}}
    phase: str | None = None  # "TRAIN"/"TEST": an include rule


class NetSpec:
    """A Caffe net under construction: inputs, then layers in order."""

    def __init__(self, name: str = "net", inputs: dict[str, Sequence[int]] | None = None):
        self.name = name
        self.inputs = {k: [int(d) for d in v] for k, v in (inputs or {}).items()}
        self.layers: list[LayerSpec] = []

    def layer(
        self,
        name: str,
        type: str,
        bottom: Sequence[str] = (),
        top: Sequence[str] = (),
        blobs: Sequence[np.ndarray] = (),
        phase: str | None = None,
        **params,
    ) -> LayerSpec:
        """Append a layer; ``params`` are parameter messages as dicts (``pooling_param={...}``)."""
        spec = LayerSpec(name, type, list(bottom), list(top), [np.asarray(b, np.float32) for b in blobs], params, phase)
        self.layers.append(spec)
        return spec

    # messages -----------------------------------------------------------------
    def to_proto(self, *, with_blobs: bool, input_form: str = "input_shape", legacy: bool = False):
        """The NetParameter; blobs only when ``with_blobs`` (the caffemodel)."""
        net = schema.NetParameter(name=self.name)
        if input_form == "layer":
            for name, shape in self.inputs.items():
                layer = net.layer.add(name=name, type="Input", top=[name])
                layer.input_param.shape.add().dim.extend(shape)
        else:
            for name, shape in self.inputs.items():
                net.input.append(name)
                if input_form == "input_dim":
                    net.input_dim.extend(shape)
                else:
                    net.input_shape.add().dim.extend(shape)
        for spec in self.layers:
            self._add_layer(net, spec, with_blobs, legacy)
        return net

    def _add_layer(self, net, spec: LayerSpec, with_blobs: bool, legacy: bool) -> None:
        """Append ``spec`` to ``net`` in the current or the V1 form."""
        if legacy:
            layer = net.layers.add(name=spec.name)
            layer.type = schema.V1_TYPES[TYPE_TO_V1[spec.type]]
        else:
            layer = net.layer.add(name=spec.name, type=spec.type)
        layer.bottom.extend(spec.bottom)
        layer.top.extend(spec.top)
        if spec.phase is not None:
            layer.include.add().phase = (
                schema.CLASSES["NetStateRule"]
                .DESCRIPTOR.fields_by_name["phase"]
                .enum_type.values_by_name[spec.phase]
                .number
            )
        for param_name, values in spec.params.items():
            json_format.ParseDict(values, getattr(layer, param_name))
        if with_blobs:
            for array in spec.blobs:
                write_blob(layer.blobs.add(), array, legacy)

    def save(
        self,
        prototxt_path: str,
        caffemodel_path: str | None = None,
        *,
        input_form: str = "input_shape",
        legacy: bool = False,
    ) -> None:
        """Write the prototxt (no blobs) and, when given a path, the caffemodel (with blobs)."""
        text = text_format.MessageToString(self.to_proto(with_blobs=False, input_form=input_form, legacy=legacy))
        with open(prototxt_path, "w", encoding="utf-8") as f:
            f.write(text)
        if caffemodel_path is not None:
            model = self.to_proto(with_blobs=True, input_form=input_form, legacy=legacy)
            with open(caffemodel_path, "wb") as f:
                f.write(model.SerializeToString())


def write_blob(blob, array: np.ndarray, legacy: bool = False) -> None:
    """Fill a BlobProto with ``array``: ``shape.dim``, or num/channels/height/width when ``legacy``."""
    array = np.asarray(array, dtype=np.float32)
    if legacy:
        if array.ndim > 4:
            raise ValueError("legacy blobs have at most 4 dims")
        dims = (1,) * (4 - array.ndim) + array.shape
        blob.num, blob.channels, blob.height, blob.width = (int(d) for d in dims)
    else:
        blob.shape.dim.extend(int(d) for d in array.shape)
    blob.data.extend(array.reshape(-1).tolist())
