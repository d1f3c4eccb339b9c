"""Named pipelines, usable anywhere a pass name is (``ember opt --passes O2``).

- ``O0``: nothing.
- ``O1``: cheap cleanups: fold constants (default 1 MiB limit), merge duplicates, drop dead nodes.
- ``O2``: ``O1`` plus shape propagation and algebraic simplification, repeated to a fixed point.
- ``O3``: ``O2`` with a larger folding limit and more rounds.
"""

_CLEANUP = "cse,dce"
_O2_BODY = "infer-shapes,fold-constants,simplify,cse,dce"

NAMED_PIPELINES: dict[str, str] = {
    "O0": "",
    "O1": f"fold-constants,{_CLEANUP}",
    "O2": f"infer-shapes,fixed-point{{max-iterations=8}}({_O2_BODY})",
    "O3": ("infer-shapes,fixed-point{max-iterations=16}(infer-shapes,fold-constants{max-bytes=16777216},"
           "simplify,cse,dce)"),
}
