"""Ember's property-testing kit for pass authors.

- ``assert_pass_preserves_semantics(pass_or_pipeline, graph, inputs=None)``: run a pass
  on a copy of ``graph``, verify it, and compare interpreter outputs before/after with
  dtype-aware tolerances (``compiler.testing.assertions``).
- Hypothesis strategies (``compiler.testing.strategies``): ``graphs(ops=..., max_nodes=...)``
  for random well-typed graphs, ``inputs_for(graph)`` and ``graph_and_inputs(...)``.
- FileCheck tests (``compiler.testing.filecheck``): ``collect_cases(dir)`` and ``run_case(case)``
  for a pytest suite, ``run_filecheck_file(path)``, and ``python -m compiler.testing.filecheck``.
"""

from .assertions import TOLERANCES, assert_pass_is_idempotent, assert_pass_preserves_semantics, clone_graph

__all__ = ["TOLERANCES", "assert_pass_is_idempotent", "assert_pass_preserves_semantics", "clone_graph"]

try:  # strategies need hypothesis, which only the test extra installs
    from .strategies import SUPPORTED_OPS, graph_and_inputs, graphs, inputs_for, random_inputs
except ImportError:  # pragma: no cover
    pass
else:
    __all__ += ["SUPPORTED_OPS", "graph_and_inputs", "graphs", "inputs_for", "random_inputs"]
