"""Ember's own schema for the Caffe messages it reads, built at import time.

Caffe models are protobuf messages (``NetParameter``) described by Caffe's
``caffe.proto``.  Ember carries no copy of that file and needs no ``protoc``:
the tables below list, for each message Ember reads, its fields with the
public wire numbers, types and defaults, and ``_build`` turns them into a
``FileDescriptorProto`` in a private descriptor pool.  Messages Ember does not
interpret (data layers, losses, solvers) are left out; the text parser skips
their fields (see ``loader.py``).

Field numbers follow the public format: BVLC Caffe for the core messages,
the SSD fork for ``PermuteParameter``/``PriorBoxParameter``/
``DetectionOutputParameter``/``NormalizeParameter`` (LayerParameter 202-206).
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "caffe"

_FieldSpec = tuple  # (name, number, type, default-or-None, label) with label "opt" | "rep" | "packed"


def opt(name: str, number: int, type_: str, default=None) -> _FieldSpec:
    return (name, number, type_, default, "opt")


def rep(name: str, number: int, type_: str, packed: bool = False) -> _FieldSpec:
    return (name, number, type_, None, "packed" if packed else "rep")


ENGINE = {"DEFAULT": 0, "CAFFE": 1, "CUDNN": 2}

# message name -> (fields, nested enums {enum name: {value name: number}})
MESSAGES: dict[str, tuple[list[_FieldSpec], dict[str, dict[str, int]]]] = {
    "BlobShape": ([rep("dim", 1, "int64", packed=True)], {}),
    "BlobProto": (
        [
            opt("shape", 7, "BlobShape"),
            rep("data", 5, "float", packed=True),
            rep("diff", 6, "float", packed=True),
            rep("double_data", 8, "double", packed=True),
            rep("double_diff", 9, "double", packed=True),
            opt("num", 1, "int32", 0),
            opt("channels", 2, "int32", 0),
            opt("height", 3, "int32", 0),
            opt("width", 4, "int32", 0),
            # NVIDIA Caffe's raw storage (fp16 weights)
            opt("raw_data_type", 10, "Type"),
            opt("raw_data", 12, "bytes"),
        ],
        {},
    ),
    "FillerParameter": (
        [
            opt("type", 1, "string", "constant"),
            opt("value", 2, "float", 0),
            opt("min", 3, "float", 0),
            opt("max", 4, "float", 1),
            opt("mean", 5, "float", 0),
            opt("std", 6, "float", 1),
            opt("sparse", 7, "int32", -1),
            opt("variance_norm", 8, "FillerParameter.VarianceNorm", "FAN_IN"),
        ],
        {"VarianceNorm": {"FAN_IN": 0, "FAN_OUT": 1, "AVERAGE": 2}},
    ),
    "NetStateRule": (
        [
            opt("phase", 1, "Phase"),
            opt("min_level", 2, "int32"),
            opt("max_level", 3, "int32"),
            rep("stage", 4, "string"),
            rep("not_stage", 5, "string"),
        ],
        {},
    ),
    "NetState": ([opt("phase", 1, "Phase", "TEST"), opt("level", 2, "int32", 0), rep("stage", 3, "string")], {}),
    "ParamSpec": (
        [
            opt("name", 1, "string"),
            opt("share_mode", 2, "ParamSpec.DimCheckMode"),
            opt("lr_mult", 3, "float", 1),
            opt("decay_mult", 4, "float", 1),
        ],
        {"DimCheckMode": {"STRICT": 0, "PERMISSIVE": 1}},
    ),
    "NetParameter": (
        [
            opt("name", 1, "string"),
            rep("input", 3, "string"),
            rep("input_shape", 8, "BlobShape"),
            rep("input_dim", 4, "int32"),
            opt("force_backward", 5, "bool", False),
            opt("state", 6, "NetState"),
            opt("debug_info", 7, "bool", False),
            rep("layer", 100, "LayerParameter"),
            rep("layers", 2, "V1LayerParameter"),
        ],
        {},
    ),
    # --- layer parameters -------------------------------------------------
    "InputParameter": ([rep("shape", 1, "BlobShape")], {}),
    "ConvolutionParameter": (
        [
            opt("num_output", 1, "uint32"),
            opt("bias_term", 2, "bool", True),
            rep("pad", 3, "uint32"),
            rep("kernel_size", 4, "uint32"),
            rep("stride", 6, "uint32"),
            rep("dilation", 18, "uint32"),
            opt("pad_h", 9, "uint32", 0),
            opt("pad_w", 10, "uint32", 0),
            opt("kernel_h", 11, "uint32"),
            opt("kernel_w", 12, "uint32"),
            opt("stride_h", 13, "uint32"),
            opt("stride_w", 14, "uint32"),
            opt("group", 5, "uint32", 1),
            opt("weight_filler", 7, "FillerParameter"),
            opt("bias_filler", 8, "FillerParameter"),
            opt("engine", 15, "ConvolutionParameter.Engine", "DEFAULT"),
            opt("axis", 16, "int32", 1),
            opt("force_nd_im2col", 17, "bool", False),
        ],
        {"Engine": ENGINE},
    ),
    "PoolingParameter": (
        [
            opt("pool", 1, "PoolingParameter.PoolMethod", "MAX"),
            opt("pad", 4, "uint32", 0),
            opt("pad_h", 9, "uint32", 0),
            opt("pad_w", 10, "uint32", 0),
            opt("kernel_size", 2, "uint32"),
            opt("kernel_h", 5, "uint32"),
            opt("kernel_w", 6, "uint32"),
            opt("stride", 3, "uint32", 1),
            opt("stride_h", 7, "uint32"),
            opt("stride_w", 8, "uint32"),
            opt("engine", 11, "PoolingParameter.Engine", "DEFAULT"),
            opt("global_pooling", 12, "bool", False),
            opt("round_mode", 13, "PoolingParameter.RoundMode", "CEIL"),
        ],
        {"PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}, "Engine": ENGINE, "RoundMode": {"CEIL": 0, "FLOOR": 1}},
    ),
    "InnerProductParameter": (
        [
            opt("num_output", 1, "uint32"),
            opt("bias_term", 2, "bool", True),
            opt("weight_filler", 3, "FillerParameter"),
            opt("bias_filler", 4, "FillerParameter"),
            opt("axis", 5, "int32", 1),
            opt("transpose", 6, "bool", False),
        ],
        {},
    ),
    "ReLUParameter": (
        [opt("negative_slope", 1, "float", 0), opt("engine", 2, "ReLUParameter.Engine", "DEFAULT")],
        {"Engine": ENGINE},
    ),
    "PReLUParameter": ([opt("filler", 1, "FillerParameter"), opt("channel_shared", 2, "bool", False)], {}),
    "ELUParameter": ([opt("alpha", 1, "float", 1)], {}),
    "SigmoidParameter": ([opt("engine", 1, "SigmoidParameter.Engine", "DEFAULT")], {"Engine": ENGINE}),
    "TanHParameter": ([opt("engine", 1, "TanHParameter.Engine", "DEFAULT")], {"Engine": ENGINE}),
    "PowerParameter": ([opt("power", 1, "float", 1), opt("scale", 2, "float", 1), opt("shift", 3, "float", 0)], {}),
    "ExpParameter": ([opt("base", 1, "float", -1), opt("scale", 2, "float", 1), opt("shift", 3, "float", 0)], {}),
    "LogParameter": ([opt("base", 1, "float", -1), opt("scale", 2, "float", 1), opt("shift", 3, "float", 0)], {}),
    "ThresholdParameter": ([opt("threshold", 1, "float", 0)], {}),
    "ClipParameter": ([opt("min", 1, "float"), opt("max", 2, "float")], {}),
    "BatchNormParameter": (
        [
            opt("use_global_stats", 1, "bool"),
            opt("moving_average_fraction", 2, "float", 0.999),
            opt("eps", 3, "float", 1e-5),
        ],
        {},
    ),
    "ScaleParameter": (
        [
            opt("axis", 1, "int32", 1),
            opt("num_axes", 2, "int32", 1),
            opt("filler", 3, "FillerParameter"),
            opt("bias_term", 4, "bool", False),
            opt("bias_filler", 5, "FillerParameter"),
        ],
        {},
    ),
    "BiasParameter": (
        [opt("axis", 1, "int32", 1), opt("num_axes", 2, "int32", 1), opt("filler", 3, "FillerParameter")],
        {},
    ),
    "EltwiseParameter": (
        [
            opt("operation", 1, "EltwiseParameter.EltwiseOp", "SUM"),
            rep("coeff", 2, "float"),
            opt("stable_prod_grad", 3, "bool", True),
        ],
        {"EltwiseOp": {"PROD": 0, "SUM": 1, "MAX": 2}},
    ),
    "ConcatParameter": ([opt("axis", 2, "int32", 1), opt("concat_dim", 1, "uint32", 1)], {}),
    "SliceParameter": (
        [opt("axis", 3, "int32", 1), rep("slice_point", 2, "uint32"), opt("slice_dim", 1, "uint32", 1)],
        {},
    ),
    "FlattenParameter": ([opt("axis", 1, "int32", 1), opt("end_axis", 2, "int32", -1)], {}),
    "ReshapeParameter": (
        [opt("shape", 1, "BlobShape"), opt("axis", 2, "int32", 0), opt("num_axes", 3, "int32", -1)],
        {},
    ),
    "PermuteParameter": ([rep("order", 1, "uint32")], {}),
    "SoftmaxParameter": (
        [opt("engine", 1, "SoftmaxParameter.Engine", "DEFAULT"), opt("axis", 2, "int32", 1)],
        {"Engine": ENGINE},
    ),
    "LRNParameter": (
        [
            opt("local_size", 1, "uint32", 5),
            opt("alpha", 2, "float", 1),
            opt("beta", 3, "float", 0.75),
            opt("norm_region", 4, "LRNParameter.NormRegion", "ACROSS_CHANNELS"),
            opt("k", 5, "float", 1),
            opt("engine", 6, "LRNParameter.Engine", "DEFAULT"),
        ],
        {"NormRegion": {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1}, "Engine": ENGINE},
    ),
    "DropoutParameter": ([opt("dropout_ratio", 1, "float", 0.5), opt("scale_train", 2, "bool", True)], {}),
    "CropParameter": ([opt("axis", 1, "int32", 2), rep("offset", 2, "uint32")], {}),
    "ArgMaxParameter": (
        [opt("out_max_val", 1, "bool", False), opt("top_k", 2, "uint32", 1), opt("axis", 3, "int32")],
        {},
    ),
    "EmbedParameter": (
        [
            opt("num_output", 1, "uint32"),
            opt("input_dim", 2, "uint32"),
            opt("bias_term", 3, "bool", True),
            opt("weight_filler", 4, "FillerParameter"),
            opt("bias_filler", 5, "FillerParameter"),
        ],
        {},
    ),
    "NormalizeParameter": (
        [
            opt("across_spatial", 1, "bool", True),
            opt("scale_filler", 2, "FillerParameter"),
            opt("channel_shared", 3, "bool", True),
            opt("eps", 4, "float", 1e-10),
        ],
        {},
    ),
    "PriorBoxParameter": (
        [
            rep("min_size", 1, "float"),
            rep("max_size", 2, "float"),
            rep("aspect_ratio", 3, "float"),
            opt("flip", 4, "bool", True),
            opt("clip", 5, "bool", False),
            rep("variance", 6, "float"),
            opt("img_size", 7, "uint32"),
            opt("img_h", 8, "uint32"),
            opt("img_w", 9, "uint32"),
            opt("step", 10, "float"),
            opt("step_h", 11, "float"),
            opt("step_w", 12, "float"),
            opt("offset", 13, "float", 0.5),
        ],
        {"CodeType": {"CORNER": 1, "CENTER_SIZE": 2, "CORNER_SIZE": 3}},
    ),
    "NonMaximumSuppressionParameter": (
        [opt("nms_threshold", 1, "float", 0.3), opt("top_k", 2, "int32"), opt("eta", 3, "float", 1.0)],
        {},
    ),
    "DetectionOutputParameter": (
        [
            opt("num_classes", 1, "uint32"),
            opt("share_location", 2, "bool", True),
            opt("background_label_id", 3, "int32", 0),
            opt("nms_param", 4, "NonMaximumSuppressionParameter"),
            opt("code_type", 6, "PriorBoxParameter.CodeType", "CORNER"),
            opt("variance_encoded_in_target", 8, "bool", False),
            opt("keep_top_k", 7, "int32", -1),
            opt("confidence_threshold", 9, "float"),
        ],
        {},
    ),
}

# LayerParameter: the common fields, then one optional field per parameter message.
_LAYER_PARAMS = {
    "argmax_param": (103, "ArgMaxParameter"),
    "batch_norm_param": (139, "BatchNormParameter"),
    "bias_param": (141, "BiasParameter"),
    "clip_param": (148, "ClipParameter"),
    "concat_param": (104, "ConcatParameter"),
    "convolution_param": (106, "ConvolutionParameter"),
    "crop_param": (144, "CropParameter"),
    "dropout_param": (108, "DropoutParameter"),
    "eltwise_param": (110, "EltwiseParameter"),
    "elu_param": (140, "ELUParameter"),
    "embed_param": (137, "EmbedParameter"),
    "exp_param": (111, "ExpParameter"),
    "flatten_param": (135, "FlattenParameter"),
    "inner_product_param": (117, "InnerProductParameter"),
    "input_param": (143, "InputParameter"),
    "log_param": (134, "LogParameter"),
    "lrn_param": (118, "LRNParameter"),
    "pooling_param": (121, "PoolingParameter"),
    "power_param": (122, "PowerParameter"),
    "prelu_param": (131, "PReLUParameter"),
    "relu_param": (123, "ReLUParameter"),
    "reshape_param": (133, "ReshapeParameter"),
    "scale_param": (142, "ScaleParameter"),
    "sigmoid_param": (124, "SigmoidParameter"),
    "softmax_param": (125, "SoftmaxParameter"),
    "slice_param": (126, "SliceParameter"),
    "tanh_param": (127, "TanHParameter"),
    "threshold_param": (128, "ThresholdParameter"),
    # the SSD fork's additions
    "permute_param": (202, "PermuteParameter"),
    "prior_box_param": (203, "PriorBoxParameter"),
    "detection_output_param": (204, "DetectionOutputParameter"),
    "norm_param": (206, "NormalizeParameter"),
}
MESSAGES["LayerParameter"] = (
    [
        opt("name", 1, "string"),
        opt("type", 2, "string"),
        rep("bottom", 3, "string"),
        rep("top", 4, "string"),
        opt("phase", 10, "Phase"),
        rep("loss_weight", 5, "float"),
        rep("param", 6, "ParamSpec"),
        rep("blobs", 7, "BlobProto"),
        rep("propagate_down", 11, "bool"),
        rep("include", 8, "NetStateRule"),
        rep("exclude", 9, "NetStateRule"),
    ]
    + [opt(name, num, msg) for name, (num, msg) in _LAYER_PARAMS.items()],
    {},
)

# The legacy V1 layer: an enum type instead of a string, different field numbers.
V1_TYPES = {
    "NONE": 0,
    "ABSVAL": 35,
    "ACCURACY": 1,
    "ARGMAX": 30,
    "BNLL": 2,
    "CONCAT": 3,
    "CONTRASTIVE_LOSS": 37,
    "CONVOLUTION": 4,
    "DATA": 5,
    "DECONVOLUTION": 39,
    "DROPOUT": 6,
    "DUMMY_DATA": 32,
    "EUCLIDEAN_LOSS": 7,
    "ELTWISE": 25,
    "EXP": 38,
    "FLATTEN": 8,
    "HDF5_DATA": 9,
    "HDF5_OUTPUT": 10,
    "HINGE_LOSS": 28,
    "IM2COL": 11,
    "IMAGE_DATA": 12,
    "INFOGAIN_LOSS": 13,
    "INNER_PRODUCT": 14,
    "LRN": 15,
    "MEMORY_DATA": 29,
    "MULTINOMIAL_LOGISTIC_LOSS": 16,
    "MVN": 34,
    "POOLING": 17,
    "POWER": 26,
    "RELU": 18,
    "SIGMOID": 19,
    "SIGMOID_CROSS_ENTROPY_LOSS": 27,
    "SILENCE": 36,
    "SOFTMAX": 20,
    "SOFTMAX_LOSS": 21,
    "SPLIT": 22,
    "SLICE": 33,
    "TANH": 23,
    "WINDOW_DATA": 24,
    "THRESHOLD": 31,
}
_V1_PARAMS = {
    "argmax_param": (23, "ArgMaxParameter"),
    "concat_param": (9, "ConcatParameter"),
    "convolution_param": (10, "ConvolutionParameter"),
    "dropout_param": (12, "DropoutParameter"),
    "eltwise_param": (24, "EltwiseParameter"),
    "exp_param": (41, "ExpParameter"),
    "inner_product_param": (17, "InnerProductParameter"),
    "lrn_param": (18, "LRNParameter"),
    "pooling_param": (19, "PoolingParameter"),
    "power_param": (21, "PowerParameter"),
    "relu_param": (30, "ReLUParameter"),
    "sigmoid_param": (38, "SigmoidParameter"),
    "softmax_param": (39, "SoftmaxParameter"),
    "slice_param": (31, "SliceParameter"),
    "tanh_param": (37, "TanHParameter"),
    "threshold_param": (25, "ThresholdParameter"),
}
MESSAGES["V1LayerParameter"] = (
    [
        rep("bottom", 2, "string"),
        rep("top", 3, "string"),
        opt("name", 4, "string"),
        rep("include", 32, "NetStateRule"),
        rep("exclude", 33, "NetStateRule"),
        opt("type", 5, "V1LayerParameter.LayerType"),
        rep("blobs", 6, "BlobProto"),
        rep("param", 1001, "string"),
        rep("blobs_lr", 7, "float"),
        rep("weight_decay", 8, "float"),
        rep("loss_weight", 35, "float"),
    ]
    + [opt(name, num, msg) for name, (num, msg) in _V1_PARAMS.items()],
    {"LayerType": V1_TYPES},
)

TOP_ENUMS = {"Phase": {"TRAIN": 0, "TEST": 1}, "Type": {"DOUBLE": 0, "FLOAT": 1, "FLOAT16": 2, "INT": 3, "UINT": 4}}

_SCALARS = {
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}


def _is_enum(type_name: str) -> bool:
    if type_name in TOP_ENUMS:
        return True
    owner, _, nested = type_name.partition(".")
    return bool(nested) and nested in MESSAGES[owner][1]


def _default_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _add_field(msg: descriptor_pb2.DescriptorProto, spec: _FieldSpec) -> None:
    name, number, type_name, default, label = spec
    F = descriptor_pb2.FieldDescriptorProto
    field = msg.field.add(name=name, number=number)
    field.label = F.LABEL_REPEATED if label in ("rep", "packed") else F.LABEL_OPTIONAL
    if label == "packed":
        field.options.packed = True
    if type_name in _SCALARS:
        field.type = _SCALARS[type_name]
    else:
        field.type = F.TYPE_ENUM if _is_enum(type_name) else F.TYPE_MESSAGE
        field.type_name = f".{PACKAGE}.{type_name}"
    if default is not None:
        field.default_value = _default_text(default)


def _build() -> dict[str, type]:
    """Build the file descriptor in a private pool; returns message classes by name."""
    file = descriptor_pb2.FileDescriptorProto(name="ember_caffe.proto", package=PACKAGE, syntax="proto2")
    for enum_name, values in TOP_ENUMS.items():
        enum = file.enum_type.add(name=enum_name)
        for value_name, number in values.items():
            enum.value.add(name=value_name, number=number)
    for msg_name, (fields, enums) in MESSAGES.items():
        msg = file.message_type.add(name=msg_name)
        for enum_name, values in enums.items():
            enum = msg.enum_type.add(name=enum_name)
            for value_name, number in values.items():
                enum.value.add(name=value_name, number=number)
        for spec in fields:
            _add_field(msg, spec)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in MESSAGES}


CLASSES = _build()
NetParameter = CLASSES["NetParameter"]
LayerParameter = CLASSES["LayerParameter"]
V1LayerParameter = CLASSES["V1LayerParameter"]
BlobProto = CLASSES["BlobProto"]
BlobShape = CLASSES["BlobShape"]
V1_TYPE_NAMES = {number: name for name, number in V1_TYPES.items()}
