"""The op registry: every op Ember knows, declared once, in the module of its family.

Where an op lives (``get_op(name).family`` says it; ``ember ops -v`` lists them):

- ``elementwise.py``: math, activations, comparison, logic, bitwise, casts, Where;
- ``reduction.py``: Reduce*, ArgMax/ArgMin, CumSum/CumProd;
- ``nn.py``: convolutions, pooling, MatMul/Gemm/Einsum, attention, Dropout;
- ``normalization.py``: batch/instance/layer/group/RMS/Lp norms, LRN, the softmaxes;
- ``recurrent.py``: RNN, GRU, LSTM (kernels in ``kernels_recurrent.py``);
- ``tensor.py``: shapes, views, concatenation, slicing, padding, creation;
- ``indexing.py``: gathers, scatters and data-dependent shapes (NonZero, Unique, TopK...);
- ``quantization.py``, ``image.py``, ``object_detection.py``, ``signal.py``, ``sequence.py``
  (and optionals), ``control.py`` (If, Loop, Scan, SequenceMap), ``random.py``;
- ``ml.py``: ``ai.onnx.ml`` (tree tables in ``trees.py``); ``text.py``: TfIdfVectorizer (counting in
  ``ngrams.py``) and strings; ``training.py``: optimizers and losses;
- ``ember.py``: Ember's own ops; ``caffe.py``: ``caffe.DetectionOutput``.

The machinery: ``registry.py`` (``OpDef``, ``get_op``), ``declare.py`` (``Family.onnx_op``, which
merges an op's facts with onnx's schema from ``onnx_schemas.py``), ``infer_onnx.py`` and
``reference_onnx.py`` (onnx's inference and kernels, the defaults), ``contracts.py`` (helpers for
shape contracts) and ``inference.py`` (``infer_types``, ``check_contract``).
"""

from .inference import InferenceError, check_contract, infer_types
from .registry import (
    REQUIRED,
    AttrSpec,
    EvalContext,
    FlopContext,
    Fusion,
    InferContext,
    OpDef,
    Trait,
    add_lowering,
    all_ops,
    get_op,
    ops_with_lowering,
    register_op,
)

__all__ = [
    "REQUIRED",
    "AttrSpec",
    "EvalContext",
    "FlopContext",
    "Fusion",
    "InferContext",
    "OpDef",
    "Trait",
    "add_lowering",
    "all_ops",
    "ops_with_lowering",
    "get_op",
    "register_op",
    "infer_types",
    "check_contract",
    "InferenceError",
]
