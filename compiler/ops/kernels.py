"""Transitional: the ``kernel`` decorator ``kernels_recurrent.py`` still applies.

Reference kernels are now given where their op is declared (``recurrent.py``
passes ``rnn``/``gru``/``lstm`` to ``onnx_op``); this decorator only returns the
function.  Delete this module with the ``@kernel`` lines of
``kernels_recurrent.py`` (owned by another change) once both have landed.
"""

from __future__ import annotations


def kernel(name: str):
    """Return the decorated function unchanged (its op's declaration names it)."""

    def deco(fn):
        return fn

    return deco
