"""Ember's built-in passes, by name, imported lazily on first use.

To add a pass: write ``passes/my_pass.py`` (one frozen ``Pass`` dataclass,
docstring listing its rewrites) and add one line to ``BUILTIN_PASSES``.  It is
then available in pipelines (``ember opt --passes my-pass``) and property-tested
by ``tests/passes/test_pass_properties.py`` automatically.
"""

from __future__ import annotations

import importlib.util

BUILTIN_PASSES: dict[str, str] = {
    "dce": "passes.dce:DeadCodeEliminationPass",
    "cse": "passes.cse:CommonSubexpressionEliminationPass",
    "fold-constants": "passes.fold_constants:FoldConstantsPass",
    "infer-shapes": "passes.infer_shapes:InferShapesPass",
    "shapes-from-uses": "passes.shapes_from_uses:ShapesFromUsesPass",
    "simplify": "passes.simplify:SimplifyPass",
    "sink-transposes": "passes.sink_transposes:SinkTransposesPass",
    "convert-layout": "passes.convert_layout:ConvertLayoutPass",
    "flatten-matmul-batch": "passes.flatten_matmul_batch:FlattenMatMulBatchPass",
    # preparation for code generation (the ``codegen-prepare`` pipeline)
    "expand-functions": "passes.expand_functions:ExpandFunctionsPass",
    "fold-castlike": "passes.fold_castlike:FoldCastLikePass",
    "conv-transpose-as-conv": "passes.conv_transpose_as_conv:ConvTransposeAsConvPass",
    "integer-conv-int8-weights": "passes.integer_conv_int8_weights:IntegerConvInt8WeightsPass",
    "integer-conv-as-float": "passes.integer_conv_as_float:IntegerConvAsFloatPass",
    "integer-matmul-int8-weights": "passes.integer_matmul_int8_weights:IntegerMatMulInt8WeightsPass",
    "lookup-8bit": "passes.lookup_8bit:Lookup8BitPass",
    "dequantize-at-uses": "passes.dequantize_at_uses:DequantizeAtUsesPass",
    "decompose-contrib": "passes.decompose_contrib:DecomposeContribPass",
    "unroll-recurrent": "passes.unroll_recurrent:UnrollRecurrentPass",
    "unroll-scans": "passes.unroll_scans:UnrollScansPass",
    "unroll-loops": "passes.unroll_loops:UnrollLoopsPass",
    "inline-constant-ifs": "passes.inline_constant_ifs:InlineConstantIfsPass",
    "select-ifs": "passes.select_ifs:SelectIfsPass",
    "prepare-if-branches": "passes.prepare_if_branches:PrepareIfBranchesPass",
    "lower-tfidf": "passes.lower_tfidf:LowerTfIdfPass",
    "lower-tree-ensembles": "passes.lower_tree_ensembles:LowerTreeEnsemblesPass",
    "fuse": "passes.fuse:FusePass",
    "check-codegen-ready": "passes.check_codegen_ready:CheckCodegenReadyPass",
    # compression (docs/compression.md)
    "quantize": "passes.quantize:QuantizePass",
    "convert-float16": "passes.convert_float:ConvertFloat16Pass",
    "convert-bfloat16": "passes.convert_float:ConvertBFloat16Pass",
    "prune": "passes.prune:PrunePass",
    "factorize": "passes.factorize:FactorizePass",
    # integer kernels for quantized (QDQ) models
    "fuse-qdq": "passes.fuse_qdq:FuseQdqPass",
}


def available_builtin_passes() -> dict[str, str]:
    """``BUILTIN_PASSES`` restricted to the modules that exist in this checkout."""
    out = {}
    for name, source in BUILTIN_PASSES.items():
        module = source.partition(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if found:
            out[name] = source
    return out
