"""Named pipelines, usable anywhere a pass name is (``ember opt --passes O2``).

- ``O0``: nothing.
- ``O1``: cheap cleanups: fold constants (1 MiB limit), merge duplicates, drop dead nodes.
- ``O2``: shape propagation, folding and algebraic simplification repeated to a fixed
  point.  Folding may materialise results up to 512 MiB: enough for every single weight
  built by ``ConstantOfShape`` in onnx's ``light_*`` models (zfnet512's 302 MB fc6 included),
  as onnx-simplifier folds them, so that simplification can fold BatchNormalization and
  friends into them.
- ``O3``: ``O2`` with a 1 GiB folding limit and more rounds.
"""

NAMED_PIPELINES: dict[str, str] = {
    "O0": "",
    "O1": "fold-constants,cse,dce",
    "O2": ("infer-shapes,fixed-point{max-iterations=8}(infer-shapes,fold-constants{max-bytes=536870912},"
           "simplify,cse,dce)"),
    "O3": ("infer-shapes,fixed-point{max-iterations=16}(infer-shapes,fold-constants{max-bytes=1073741824},"
           "simplify,cse,dce)"),
}
