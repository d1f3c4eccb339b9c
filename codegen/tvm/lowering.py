"""Imports every TVM lowering module, so that each adds its lowerings to the op registry.

``compiler.ops.registry.LOWERING_MODULES["tvm"]`` names this module: the first query of any op's
``"tvm"`` lowering imports it, so what is registered never depends on what was imported before.
The modules are grouped by operator family (see ``codegen.tvm.lower``); each op has exactly one
lowering, and a second registration raises.
"""

from .lower import elementwise, linalg, ml, object_detection, quantization, recurrent, reduction, text, training  # noqa: F401
from .lower.image import resize, sampling  # noqa: F401
from .lower.nn import col2im, conv, conv_blocked, conv_transpose, deform_conv, normalization, pool  # noqa: F401
from .lower.signal import dft, spectrogram  # noqa: F401
from .lower.tensor import creation, data_dependent, indexing, movement, sorting, views  # noqa: F401
