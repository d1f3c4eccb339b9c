"""Named pipelines, usable anywhere a pass name is (``ember opt --passes O2``).

- ``O0``: nothing.
- ``O1``: cheap cleanups: fold constants (1 MiB limit), merge duplicates, drop dead nodes.
- ``O2``: shape propagation, folding and algebraic simplification repeated to a fixed
  point.  Folding may materialise results up to 16 MiB: enough for every single weight of
  ResNet-50-sized models built by ``ConstantOfShape`` (as onnx's ``light_*`` models are),
  so that simplification can fold BatchNormalization and friends into them.
- ``O3``: ``O2`` with a 64 MiB folding limit and more rounds.
"""

NAMED_PIPELINES: dict[str, str] = {
    "O0": "",
    "O1": "fold-constants,cse,dce",
    "O2": ("infer-shapes,fixed-point{max-iterations=8}(infer-shapes,fold-constants{max-bytes=16777216},"
           "simplify,cse,dce)"),
    "O3": ("infer-shapes,fixed-point{max-iterations=16}(infer-shapes,fold-constants{max-bytes=67108864},"
           "simplify,cse,dce)"),
}
