"""Named pipelines, usable anywhere a pass name is (``ember opt --passes O2``).

- ``O0``: nothing.
- ``O1``: cheap cleanups: fold constants (1 MiB limit), merge duplicates, drop dead nodes.
- ``O2``: ``fuse-qdq`` first (QDQ islands become integer ops before folding dequantizes the
  weights), then shape propagation, folding and algebraic simplification repeated to a fixed
  point.  Folding may materialise results up to 512 MiB: enough for every single weight
  built by ``ConstantOfShape`` in onnx's ``light_*`` models (zfnet512's 302 MB fc6 included),
  as onnx-simplifier folds them, so that simplification can fold BatchNormalization and
  friends into them.  ``flatten-matmul-batch`` makes batched products against one 2-D weight
  a single 2-D product (a CRNN's per-time-step classifier).
- ``O3``: ``O2`` with a 1 GiB folding limit and more rounds, then ``convert-layout`` (2-D
  convolutions in NCHW16c between kernels: 0.87-0.97x ResNet-50's and 0.71-0.91x MobileNetV2's
  latency at 1 and 2 threads, docs/optimization.md); its ``ember.*`` ops are for code
  generation, so export ONNX after ``O2``.
- ``codegen-prepare``: what every compile driver runs after ``O*`` (``compiler.driver``), so
  ``ember opt --passes O2,codegen-prepare --print-ir-after-all`` shows the graph codegen receives.
  Until nothing changes: onnxruntime's com.microsoft contrib ops rewritten into standard ops,
  recurrent ops written out per step, integer TfIdfVectorizer and tree
  ensembles lowered, composite ops without a TVM lowering expanded into their ONNX function bodies,
  ConvTransposes whose kernel is their stride made 1x1 Convs and DepthToSpace, dense integer convs
  of uint8 or zero-pointed weights made int8-weight ConvIntegers less a window-sum correction,
  the integer convs the integer kernels still do not take (grouped ones, and depthwise ones of
  weight zero points) made float32 Convs where
  that is exact, integer matmuls of per-column weight zero points made int8-weight MatMulIntegers
  less a row-sum correction, quantized activations of one 8-bit value (Q(f(DQ(x)))) made table
  lookups, a dequantization with several fusing readers copied to each (no kernel writes it as
  float32),
  static shapes propagated and constants folded (with the limits the planner folded with:
  ``OpDef.cheap_fold`` ops whatever their size, others when their constant inputs hold at most
  65,536 elements), constant-condition ``If`` inlined, ``Scan``/``Loop`` unrolled; then, only once
  that changes nothing (a condition may still fold), the ``If`` nodes left with tiny branches
  become ``Where`` selections; the others stay as real branches, each branch body prepared by this
  same pipeline (``prepare-if-branches``).  ``fuse`` then makes each group of ops that runs as
  one kernel an ``ember.Fused`` node, and ``check-codegen-ready`` finally names any control flow left.
"""

# fold-constants as the compile path needs it: nothing known at compile time is computed at run time
CODEGEN_FOLD = "fold-constants{max-bytes=1048576,max-input-elements=65536,cheap-any-size=true}"
CODEGEN_REWRITES = (
    "decompose-contrib,unroll-recurrent,lower-tfidf,lower-tree-ensembles,expand-functions,fold-castlike,"
    "conv-transpose-as-conv,integer-conv-int8-weights,integer-conv-as-float,integer-matmul-int8-weights,lookup-8bit,"
    "dequantize-at-uses,"
    f"fixed-point{{max-iterations=8}}(infer-shapes,shapes-from-uses,{CODEGEN_FOLD},dce),"
    "inline-constant-ifs,unroll-scans,unroll-loops"
)
# CUDA's: no depthwise integer kernel (those convs become float32 Convs), and no dequantization
# copied into its readers (its reductions take no fused producers: each copy would be a kernel)
CODEGEN_REWRITES_CUDA = CODEGEN_REWRITES.replace(
    "integer-conv-as-float,", "integer-conv-as-float{cpu-depthwise=0},"
).replace("dequantize-at-uses,", "")

NAMED_PIPELINES: dict[str, str] = {
    "O0": "",
    "O1": "fold-constants,cse,dce",
    "O2": (
        "fuse-qdq,infer-shapes,fixed-point{max-iterations=8}(infer-shapes,fold-constants{max-bytes=536870912},simplify,flatten-matmul-batch,cse,dce)"
    ),
    "O3": (
        "fuse-qdq,infer-shapes,fixed-point{max-iterations=16}(infer-shapes,fold-constants{max-bytes=1073741824},"
        "simplify,flatten-matmul-batch,cse,dce),convert-layout"
    ),
    "codegen-prepare": (
        f"fixed-point{{max-iterations=4}}(fixed-point{{max-iterations=4}}({CODEGEN_REWRITES}),"
        "select-ifs),prepare-if-branches,fuse,check-codegen-ready"
    ),
    # for targets whose driver cannot branch yet (CUDA): Ifs of up to 64 nodes a branch, heavy ops
    # included, are computed both ways and selected, as every target did before real branches; and
    # no injective producers fused into a reduction, which DLight's GPU schedules refuse
    "codegen-prepare-no-branches": (
        f"fixed-point{{max-iterations=4}}(fixed-point{{max-iterations=4}}({CODEGEN_REWRITES_CUDA}),"
        "select-ifs{max-nodes=64,anchors=1}),prepare-if-branches,fuse{prologues=0},check-codegen-ready"
    ),
}
