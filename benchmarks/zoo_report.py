"""The zoo benchmark's arithmetic and text: per-round ratios, geometric means, the table, and the
per-kernel profile that an Ember library prints under ``EMBER_PROFILE=1``.

Pure Python (no torch, numpy or runtimes), so that tests can check it on any machine."""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field

from core_latency import NEAR_NS  # a core-to-core round trip below this: the cores share an L3

RUNTIMES = ("ember", "ort", "openvino")


def median_ratio(times: list[float], reference: list[float]) -> float:
    """Median over rounds of ``times[i] / reference[i]``: the two were measured in the same round,
    so a burst of machine load that slows one round cancels out of its ratio."""
    if len(times) != len(reference) or not times:
        raise ValueError(f"need one reference time per round ({len(times)} vs {len(reference)})")
    return statistics.median(t / r for t, r in zip(times, reference))


def geomean(values) -> float:
    values = list(values)
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"geometric mean needs positive values, not {values}")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def peak_share(flops: float, seconds: float, threads: int, peak_per_core: float) -> tuple[float, float]:
    """(GFLOP/s, fraction of the FMA peak of ``threads`` cores of ``peak_per_core`` GFLOP/s each) for
    ``flops`` done in ``seconds``."""
    gflops = flops / seconds / 1e9
    return gflops, gflops / (peak_per_core * threads)


@dataclass
class Row:
    """One model at one thread count.  Times in seconds per round; ``error`` says why a runtime is missing."""

    model: str
    threads: int
    times: dict[str, list[float]] = field(default_factory=dict)
    flops: int = 0
    compile_s: float | None = None
    max_abs_err: float | None = None
    ref_max: float | None = None
    errors: list[str] = field(default_factory=list)
    hotspots: str = ""  # Ember's slowest kernels, when profiled
    peak_per_core: float = 0.0  # measured f32 FMA GFLOP/s of one core (compiler.fma_peak); 0: unknown
    # the cores' round trip measured before each round (``core_latency.py``), at 2 threads and more
    core_ns: list[float] = field(default_factory=list)

    def median_ms(self, runtime: str) -> float | None:
        t = self.times.get(runtime)
        return 1e3 * statistics.median(t) if t else None

    def ratio(self, runtime: str, near: bool | None = None) -> float | None:
        """``runtime``'s latency relative to onnxruntime (median of per-round ratios); with ``near``
        True or False, over only the rounds whose cores were near (round trip under ``NEAR_NS``) or
        far (None where there were none)."""
        t, ref = self.times.get(runtime), self.times.get("ort")
        if not (t and ref):
            return None
        if near is not None:
            if len(self.core_ns) != len(t):
                return None
            keep = [i for i, ns in enumerate(self.core_ns) if (ns < NEAR_NS) == near]
            t, ref = [t[i] for i in keep], [ref[i] for i in keep]
        return median_ratio(t, ref) if t else None

    def gflops(self) -> tuple[float, float | None] | None:
        """(Ember's GFLOP/s, its share of the peak or None when no peak was measured)."""
        t = self.times.get("ember")
        if not (t and self.flops):
            return None
        if not self.peak_per_core:
            return self.flops / statistics.median(t) / 1e9, None
        return peak_share(self.flops, statistics.median(t), self.threads, self.peak_per_core)


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


HEADER = (
    "| model | threads | Ember ms | ORT ms | OpenVINO ms | Ember/ORT | OV/ORT | Ember GFLOP/s | % peak "
    "| cores ns | compile s | max abs err | error |"
)


def format_row(row: Row) -> str:
    perf = row.gflops()
    share = perf[1] if perf else None
    compile_s = _fmt(row.compile_s, ".1f")
    if row.compile_s is not None and row.compile_s > 60:
        compile_s += " (>60)"
    err = _fmt(row.max_abs_err, ".1e")
    if row.max_abs_err is not None and row.ref_max is not None:
        err += f" (of {row.ref_max:.2g})"
    cells = [
        row.model,
        str(row.threads),
        _fmt(row.median_ms("ember"), ".2f"),
        _fmt(row.median_ms("ort"), ".2f"),
        _fmt(row.median_ms("openvino"), ".2f"),
        _fmt(row.ratio("ember"), ".2f") + ("x" if row.ratio("ember") is not None else ""),
        _fmt(row.ratio("openvino"), ".2f") + ("x" if row.ratio("openvino") is not None else ""),
        _fmt(perf and perf[0], ".1f"),
        _fmt(None if share is None else 100 * share, ".0f"),
        _fmt(statistics.median(row.core_ns) if row.core_ns else None, ".0f"),
        compile_s,
        err,
        "; ".join(e.replace("|", "/") for e in row.errors),
    ]
    return "| " + " | ".join(cells) + " |"


def format_table(rows: list[Row]) -> str:
    lines = [HEADER, "|" + "---|" * (HEADER.count(" | ") + 1)]
    lines += [format_row(r) for r in sorted(rows, key=lambda r: (r.threads, r.model))]
    return "\n".join(lines)


def summary(rows: list[Row]) -> list[str]:
    """One line per thread count: geometric means of Ember/ORT and OpenVINO/ORT and the worst model
    (over the models each runtime ran)."""
    lines = []
    for threads in sorted({r.threads for r in rows}):
        here = [r for r in rows if r.threads == threads]
        parts = [f"threads={threads}:"]
        for runtime, label in (("ember", "Ember/ORT"), ("openvino", "OpenVINO/ORT")):
            ratios = {r.model: r.ratio(runtime) for r in here if r.ratio(runtime) is not None}
            if not ratios:
                parts.append(f"{label} no models;")
                continue
            worst = max(ratios, key=ratios.get)
            parts.append(
                f"{label} geomean {geomean(ratios.values()):.2f}x over {len(ratios)} models, "
                f"worst {ratios[worst]:.2f}x ({worst});"
            )
        failed = [r.model for r in here if r.errors]
        if failed:
            parts.append(f"with errors: {', '.join(failed)}")
        lines.append(" ".join(parts).rstrip(";"))
        lines += _by_core_distance(threads, here)
    return lines


def _by_core_distance(threads: int, rows: list[Row]) -> list[str]:
    """Ember/ORT over the rounds whose cores were near, and over those whose cores were far (a model
    counts where it had such rounds): on a virtual machine the host moves the virtual CPUs."""
    lines = []
    for near, label in ((True, f"near (round trip < {NEAR_NS:.0f} ns)"), (False, "far")):
        ratios = {r.model: r.ratio("ember", near) for r in rows if r.ratio("ember", near) is not None}
        if ratios:
            worst = max(ratios, key=ratios.get)
            rounds = sum(sum((ns < NEAR_NS) == near for ns in r.core_ns) for r in rows)
            lines.append(
                f"  threads={threads}, {rounds} rounds with the cores {label}: Ember/ORT geomean "
                f"{geomean(ratios.values()):.2f}x over {len(ratios)} models, worst {ratios[worst]:.2f}x ({worst})"
            )
    return lines


_PROFILE_LINE = re.compile(r"^\s*(\d+)\s+([0-9.]+) ms\s+([0-9.]+)%\s+(.*)$")


def top_kernels(profile_text: str, count: int = 3) -> list[tuple[float, float, str]]:
    """The ``count`` slowest kernel calls, as (ms per run, share %, label), from the table an Ember
    library prints to stderr when it is destroyed under ``EMBER_PROFILE=1``."""
    calls = []
    for line in profile_text.splitlines():
        m = _PROFILE_LINE.match(line)
        if m:
            calls.append((float(m.group(2)), float(m.group(3)), m.group(4).strip()))
    return sorted(calls, key=lambda c: -c[0])[:count]


def kernel_kinds(profile_text: str, count: int = 3) -> list[tuple[float, float, str]]:
    """Like ``top_kernels`` but summed over calls of one kind (the label before its node name,
    e.g. ``conv_relu``), which says what class of kernel a model spends its time in."""
    totals: dict[str, list[float]] = {}
    for ms, share, label in top_kernels(profile_text, count=10**9):
        kind = label.split(" (")[0]
        total = totals.setdefault(kind, [0.0, 0.0])
        total[0] += ms
        total[1] += share
    return sorted(((ms, share, kind) for kind, (ms, share) in totals.items()), key=lambda c: -c[0])[:count]
