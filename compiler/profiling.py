"""Per-call profiles of a compiled model library, and the two ways ``ember bench --profile`` shows them.

    model = compiler.runtime.load("model.so", profile=True)   # or model.enable_profile()
    model.run(feeds)
    prof = model.profile()                                     # a Profile: one CallProfile per kernel call
    print(format_profile(prof))                                # the table, slowest call first
    json.dump(chrome_trace([prof]), open("trace.json", "w"))   # chrome://tracing, Perfetto

The numbers come from the library itself (``<prefix>_profile``, see docs/codegen.md): each call's time
as the generated C measures it around the kernel, and each call's FLOPs, bytes and fused ops as the
compiler's plan knew them, in a static table inside the library. Nothing here needs TVM.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallProfile:
    """One kernel call of the run sequence, with its totals over the profiled runs."""

    index: int  # position in the run sequence
    kernel: str  # compiled function; calls with equal kernels share it
    op_types: tuple[str, ...]  # fused ops, in order
    node_names: tuple[str, ...]  # the graph nodes they compute
    flops: int  # per call
    bytes: int  # inputs (weights included) plus outputs, per call
    calls: int  # times it ran while profiling
    seconds: float  # total over those runs
    min_seconds: float  # its shortest single run
    last_start: float  # latest profiled run: seconds from the run's start to this call's start
    last_seconds: float  # latest profiled run: this call's duration

    @property
    def ops(self) -> str:
        """The fused op types joined with ``+`` (``Conv+Add+Relu``)."""
        return "+".join(self.op_types)

    @property
    def node(self) -> str:
        """The first node name that names a graph node (rewrites leave some unnamed: codegen.plan labels
        those ``<unnamed ...>``), else the kernel."""
        named = [n for n in self.node_names if not n.startswith("<unnamed")]
        return named[0] if named else self.kernel

    def gflops_per_second(self) -> float:
        return self.flops * self.calls / self.seconds / 1e9 if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Profile:
    """A snapshot of an instance's profile: totals since profiling was (re)started."""

    runs: int
    seconds: float  # in the call sequence, over all profiled runs
    threads: int  # of the instance's pool
    last_run_start: float  # CLOCK_MONOTONIC seconds
    last_run_seconds: float
    calls: tuple[CallProfile, ...]

    def by_time(self) -> list[CallProfile]:
        """The calls, slowest first (ties in run order)."""
        return sorted(self.calls, key=lambda c: (-c.seconds, c.index))

    def flops_per_run(self) -> int:
        """FLOPs of the calls that ran, per run (a call in an If branch not taken did not run)."""
        if self.runs:
            return sum(c.flops * c.calls for c in self.calls) // self.runs
        return sum(c.flops for c in self.calls)


def format_profile(profile: Profile, peak_gflops_per_core: float | None = None) -> str:
    """The per-call table, slowest first: kernel, calls, total and per-run time, share, GFLOP/s, share
    of the FMA peak (``peak_gflops_per_core``, measured on this machine when None, times the instance's
    threads), bytes moved, fused ops and their nodes; then the time per leading op type."""
    if peak_gflops_per_core is None:
        from compiler.fma_peak import measure_fma_peak

        peak_gflops_per_core = measure_fma_peak()
    peak = peak_gflops_per_core * max(profile.threads, 1)
    runs = max(profile.runs, 1)
    in_calls = sum(c.seconds for c in profile.calls)
    share_of = in_calls if in_calls > 0 else 1.0
    best = sum(c.min_seconds for c in profile.calls)
    lines = [
        f"profile: {profile.runs} runs, {profile.threads} thread(s), {1e3 * profile.seconds / runs:.3f} ms per run "
        f"({1e3 * in_calls / runs:.3f} ms in {len(profile.calls)} kernel calls), "
        f"{profile.flops_per_run() / 1e9:.3f} GFLOP per run, "
        f"{_gflops(profile.flops_per_run() * profile.runs, in_calls):.1f} GFLOP/s "
        f"(peak {peak:.0f} = {peak_gflops_per_core:.0f} x {profile.threads})",
        f"sum of each call's shortest run: {1e3 * best:.3f} ms, {_gflops(profile.flops_per_run(), best):.1f} GFLOP/s "
        f"({100 * _gflops(profile.flops_per_run(), best) / peak:.1f}% of peak; a bound for a quiet machine)",
        f"{'#':>4}  {'kernel':<22} {'calls':>6} {'total ms':>9} {'ms/run':>8} {'min ms':>8} {'share':>6} "
        f"{'GFLOP/s':>8} {'%peak':>6} {'MB moved':>9}  ops [nodes]",
    ]
    for c in profile.by_time():
        gflops = c.gflops_per_second()
        lines.append(
            f"{c.index:>4}  {c.kernel:<22} {c.calls:>6} {1e3 * c.seconds:>9.3f} {1e3 * c.seconds / runs:>8.3f} "
            f"{1e3 * c.min_seconds:>8.3f} "
            f"{100 * c.seconds / share_of:>5.1f}% {gflops:>8.1f} {100 * gflops / peak:>5.1f}% "
            f"{c.bytes / 1e6:>9.3f}  {c.ops} [{', '.join(c.node_names)}]"
        )
    lines.append("by leading op type:")
    totals: dict[str, list] = {}
    for c in profile.calls:
        entry = totals.setdefault(c.op_types[0] if c.op_types else "?", [0, 0.0, 0])
        entry[0] += 1
        entry[1] += c.seconds
        entry[2] += c.flops * c.calls
    for op, (count, secs, flops) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        lines.append(
            f"  {op:<24} {count:>4} calls {1e3 * secs / runs:>9.3f} ms/run {100 * secs / share_of:>5.1f}% "
            f"{_gflops(flops, secs):>8.1f} GFLOP/s"
        )
    return "\n".join(lines)


def _gflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e9 if seconds > 0 else 0.0


def chrome_trace(snapshots: list[Profile], name: str = "model", pid: int = 1, tid: int = 1) -> dict:
    """A Trace Event Format document (JSON object form) of the runs that ``snapshots`` end: one
    snapshot taken after each run, whose ``last_*`` fields time that run. Each run is an ``X``
    (complete) event of category ``Session``, each kernel call one of category ``Node`` inside it,
    with ``ts`` and ``dur`` in microseconds from the first run's start and the call's ops, nodes,
    FLOPs and bytes in ``args``; chrome://tracing and Perfetto (ui.perfetto.dev) open it."""
    events: list[dict] = [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": f"ember {name}"}},
        {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": "run"}},
    ]
    origin = snapshots[0].last_run_start if snapshots else 0.0
    for run, snap in enumerate(snapshots):
        base = snap.last_run_start - origin
        events.append(
            {
                "name": f"{name} run {run}",
                "cat": "Session",
                "ph": "X",
                "ts": round(1e6 * base, 3),
                "dur": round(1e6 * snap.last_run_seconds, 3),
                "pid": pid,
                "tid": tid,
                "args": {"run": run, "calls": len(snap.calls), "threads": snap.threads},
            }
        )
        for c in snap.calls:
            if c.last_start < 0:  # in an If branch the run did not take
                continue
            events.append(
                {
                    "name": f"{c.ops} ({c.node})",
                    "cat": "Node",
                    "ph": "X",
                    "ts": round(1e6 * (base + c.last_start), 3),
                    "dur": round(1e6 * c.last_seconds, 3),
                    "pid": pid,
                    "tid": tid,
                    "args": {
                        "op_name": c.op_types[0] if c.op_types else "",  # as onnxruntime's profiler names it
                        "call": c.index,
                        "kernel": c.kernel,
                        "ops": list(c.op_types),
                        "nodes": list(c.node_names),
                        "flops": c.flops,
                        "bytes": c.bytes,
                    },
                }
            )
    return {"traceEvents": events, "displayTimeUnit": "ms"}
