"""Ember's kernels against onnxruntime's nodes, model by model: where a model's gap comes from.

    python benchmarks/profile_vs_ort.py MODEL.onnx [--library MODEL.so] [--threads 1] [--runs 100] [--top 20]

Compiles MODEL (unless ``--library`` names its library), profiles every kernel call over
``--runs`` runs (``Library.profile``) and every onnxruntime node over as many (its own profiler,
``SessionOptions.enable_profiling``), then prints Ember's kernels by how much longer their shortest
run is than the summed shortest runs of the onnxruntime nodes that compute the same graph nodes,
largest first. Shortest runs, because this machine is shared: they are what a quiet machine would
show. onnxruntime names a node it fused or moved into NCHWc after its last output tensor
(``<output>[_nchwc]``), which is matched to the node that makes that tensor; onnxruntime's layout
reorders and anything else unmatched are listed at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def ember_calls(library: str, feeds: dict, threads: int, runs: int):
    """Ember's profiled calls (``compiler.profiling.CallProfile``) over ``runs`` runs."""
    from compiler.runtime import load

    lib = load(library, num_threads=threads, profile=True)
    for _ in range(3):
        lib.run(feeds)
    lib.enable_profile()
    for _ in range(runs):
        lib.run(feeds)
    calls = lib.profile().calls
    lib.close()
    return calls


def ort_node_minimums(model: str, feeds: dict, threads: int, runs: int) -> dict[str, float]:
    """Shortest run in seconds of every onnxruntime node, keyed by the graph node's name."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(model, load_external_data=False).graph
    producers = {out: node.name for node in graph.node for out in node.output}
    with tempfile.TemporaryDirectory(prefix="ember-ortprof-") as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        for _ in range(runs + 3):
            session.run(None, feeds)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    times = collections.defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[graph_node_name(event["name"], producers)].append(event["dur"] * 1e-6)
    return {name: min(durations) for name, durations in times.items()}


def graph_node_name(event_name: str, producers: dict[str, str]) -> str:
    """The graph node an onnxruntime profile event (``<name>_kernel_time``) times. A node that
    onnxruntime made (a fusion, an NCHWc conv) is named after its last output tensor, with
    ``_nchwc`` after it for NCHWc nodes; ``producers`` maps output tensors to the nodes that make
    them. Other names (onnxruntime's own reorders) are kept."""
    name = event_name.removesuffix("_kernel_time")
    tensor = name.removesuffix("_nchwc")
    return producers.get(tensor, tensor if tensor in producers.values() else name)


def random_feeds(model: str) -> dict[str, np.ndarray]:
    """One standard-normal float32 input per graph input (batch 1 for symbolic dimensions)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    return {
        i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
        for i in session.get_inputs()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--library", help="a library already compiled from MODEL")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    feeds = random_feeds(args.model)
    library = args.library
    with tempfile.TemporaryDirectory(prefix="ember-profile-") as tmp:
        if library is None:
            import onnx

            import compiler

            library = os.path.join(tmp, "model.so")
            compiler.compile(onnx.load(args.model), library)
        calls = ember_calls(library, feeds, args.threads, args.runs)
    ort_min = ort_node_minimums(args.model, feeds, args.threads, args.runs)
    rows = []
    for call in calls:
        ort_seconds = sum(ort_min.pop(name, 0.0) for name in call.node_names)
        rows.append((call.min_seconds - ort_seconds, call, ort_seconds))
    ember_total = sum(call.min_seconds for call in calls)
    ort_total = sum(ort_min.values()) + sum(r[2] for r in rows)
    print(
        f"{os.path.basename(args.model)}, {args.threads} thread(s), shortest of {args.runs} runs: "
        f"Ember's kernels {ember_total * 1e3:.3f} ms, onnxruntime's nodes {ort_total * 1e3:.3f} ms"
    )
    print(f"{'Ember ms':>9} {'ORT ms':>8} {'gap ms':>8} {'ratio':>6}  kernel  ops  [first node]")
    for gap, call, ort_seconds in sorted(rows, key=lambda r: -r[0])[: args.top]:
        ratio = f"{call.min_seconds / ort_seconds:.2f}x" if ort_seconds else "-"
        print(
            f"{call.min_seconds * 1e3:9.3f} {ort_seconds * 1e3:8.3f} {gap * 1e3:+8.3f} {ratio:>6}  "
            f"{call.kernel}  {'+'.join(call.op_types)}  [{call.node_names[0] if call.node_names else ''}]"
        )
    unmatched = sorted(ort_min.items(), key=lambda kv: -kv[1])
    if unmatched:
        shown = ", ".join(f"{name} {seconds * 1e3:.3f}" for name, seconds in unmatched[:8])
        print(f"onnxruntime nodes matched to no kernel ({len(unmatched)}, ms): {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
