"""Reading Caffe files into Ember's schema messages.

- ``read_prototxt``: the text ``NetParameter``; a syntax error becomes an
  ``EmberError`` with the file and line.  Fields Ember's schema does not know
  (data-layer and solver settings) are skipped.
- ``read_caffemodel``: the binary ``NetParameter`` holding the trained blobs.
- ``layers_of``: the net's layers in one form, ``LayerParameter``; legacy V1
  ``layers`` are converted (enum type -> type string, same parameters), and
  layers excluded from the TEST phase are dropped.
- ``blob_array``: one ``BlobProto`` as a float32 array, legacy
  ``num/channels/height/width`` shapes and NVIDIA Caffe's fp16 ``raw_data``
  included.
"""

from __future__ import annotations

import warnings

import numpy as np
from google.protobuf import message, text_format

from compiler.diagnostics import EmberError

from . import schema

# V1 enum names -> the layer type strings of the current format.
V1_TO_TYPE = {
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DATA": "Data",
    "DECONVOLUTION": "Deconvolution",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
    "NONE": "NONE",
}
TEST = 1
_RAW_TYPES = {0: np.dtype("<f8"), 1: np.dtype("<f4"), 2: np.dtype("<f2")}  # schema.TOP_ENUMS["Type"]


def read_prototxt(path: str):
    """The text-format ``NetParameter`` in ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise EmberError(f"cannot read the prototxt: {error.strerror}", file=path) from None
    except UnicodeDecodeError:
        raise EmberError("the prototxt is not UTF-8 text (is it a binary .caffemodel?)", file=path) from None
    net = schema.NetParameter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped unknown fields warn once each
            text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as error:
        line, column = error.GetLine(), error.GetColumn()
        reason = str(error).split(" : ", 1)[-1] if " : " in str(error) else str(error)
        where = f"line {line}, column {column}" if line else "unknown position"
        raise EmberError(f"syntax error at {where}: {reason}", file=path) from None
    return net


def read_caffemodel(path: str):
    """The binary ``NetParameter`` (weights) in ``path``."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise EmberError(f"cannot read the caffemodel: {error.strerror}", file=path) from None
    net = schema.NetParameter()
    try:
        net.ParseFromString(data)
    except message.DecodeError as error:
        raise EmberError(f"not a binary Caffe model: {error}", file=path) from None
    return net


def _included(layer, phase: int = TEST) -> bool:
    """Caffe's NetStateRule filter, for the phase only (levels and stages are not modelled)."""
    if layer.include:
        return any(not rule.HasField("phase") or rule.phase == phase for rule in layer.include)
    return not any(rule.HasField("phase") and rule.phase == phase for rule in layer.exclude)


def _from_v1(old):
    """A V1 layer as a current ``LayerParameter`` (type string, same parameter messages)."""
    layer = schema.LayerParameter(name=old.name)
    layer.type = V1_TO_TYPE.get(schema.V1_TYPE_NAMES.get(old.type, ""), f"V1:{old.type}")
    layer.bottom.extend(old.bottom)
    layer.top.extend(old.top)
    layer.blobs.extend(old.blobs)
    layer.include.extend(old.include)
    layer.exclude.extend(old.exclude)
    for field in old.DESCRIPTOR.fields:
        if field.name.endswith("_param") and old.HasField(field.name):
            getattr(layer, field.name).CopyFrom(getattr(old, field.name))
    return layer


def layers_of(net, *, phase_filter: bool = True) -> list:
    """All layers of ``net`` as ``LayerParameter`` (V1 converted), TEST-phase ones only by default.

    A net uses one form or the other (Caffe refuses a mix); ValueError when both are present.
    """
    if net.layer and net.layers:
        raise ValueError("the net mixes 'layer' and legacy 'layers' entries")
    layers = list(net.layer) + [_from_v1(old) for old in net.layers]
    return [layer for layer in layers if not phase_filter or _included(layer)]


def blob_shape(blob) -> tuple[int, ...]:
    """The blob's shape: ``shape.dim`` when set, else the legacy 4-D num/channels/height/width."""
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    return (blob.num, blob.channels, blob.height, blob.width)


def blob_array(blob) -> np.ndarray:
    """The blob's values as a float32 array of its declared shape."""
    if blob.HasField("raw_data"):
        dtype = _RAW_TYPES.get(blob.raw_data_type)
        if dtype is None:
            raise ValueError(f"blob raw_data_type {blob.raw_data_type} is not a float type")
        array = np.frombuffer(blob.raw_data, dtype=dtype).astype(np.float32)
    else:
        array = np.asarray(blob.data if len(blob.data) else blob.double_data, dtype=np.float32)
    shape = blob_shape(blob)
    if array.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"blob holds {array.size} values but its shape is {list(shape)}")
    return array.reshape(shape)
