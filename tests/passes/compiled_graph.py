"""A graph compiled to a library and run once with profiling: what the pass tests that check a
rewrite's compiled effect read (its outputs, and the ops fused into each kernel called)."""

from __future__ import annotations


def compiled_outputs_and_kernels(graph, feeds: dict, directory) -> tuple[list, list[tuple[str, ...]]]:
    """(the library's outputs in order, each kernel call's fused op types) for ``graph`` on ``feeds``."""
    from compiler import compile_model
    from compiler.runtime import load

    library = str(directory / "m.so")
    compile_model(graph, library)
    with load(library, profile=True) as compiled:
        outputs = list(compiled.run(feeds).values())
        kernels = [tuple(call.op_types) for call in compiled.profile().calls]
    return outputs, kernels
