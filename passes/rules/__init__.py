"""Rule sets of the ``simplify`` pass, grouped by family.

Each module exposes ``rules(fast_math: bool) -> RuleSet``:

- ``algebra``: arithmetic identities and exact strength reduction;
- ``shape``: no-op and inverse layout ops (Identity, Cast, Pad, Slice, Expand, Reshape, Transpose...);
- ``conv_fusion``: BatchNormalization / per-channel Mul, Add / Pad folded into Conv, Gemm, MatMul, pools;
- ``gemm``: MatMul + Add -> Gemm and Transpose folded into Gemm;
- ``recognise``: GELU, LayerNormalization, Softmax, HardSwish, SiLU sub-graphs -> single ops.
"""
