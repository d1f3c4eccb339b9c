"""Imports every TVM lowering module, so that each adds its lowerings to the op registry.

``compiler.ops.registry.LOWERING_MODULES["tvm"]`` names this module: the first query of any op's
``"tvm"`` lowering imports it, so what is registered never depends on what was imported before.
"""

from . import elementwise, nn, reduce, shape_params, tensor  # noqa: F401
from . import (ops_more_convtranspose, ops_more_dft, ops_more_geometry, ops_more_gridsample,  # noqa: F401
               ops_more_misc, ops_more_nms, ops_more_nn2, ops_more_nn3, ops_more_quant, ops_more_resize,
               ops_more_select, ops_more_signal, ops_more_tfidf, ops_more_topk, ops_more_training,
               ops_more_trees)
