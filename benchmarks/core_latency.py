"""How far apart the host placed the first two CPUs this process may use: the round trip of a cache
line between two threads pinned to them (``core_latency.c``, built with the system C compiler).

    python benchmarks/core_latency.py          # one measurement, in ns

On this project's shared Zen 4 virtual machine the figure moves between about 50-160 ns (both
virtual CPUs in one core complex) and 330-1,100 ns (in two), minutes apart, and 2-thread latencies
move with it: MobileNetV2 took 3.8-4.0 ms at 2 threads with the cores near and 7.3 ms, its 1-thread
time, with them far (docs/performance.md). ``benchmarks/zoo.py`` measures it before each round at 2
threads and more and reports the ratios of near and far rounds apart.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core_latency.c")
NEAR_NS = 250.0  # a round trip below this: the two CPUs share a core complex (an L3)


@functools.lru_cache(maxsize=1)
def _program() -> str | None:
    """The probe, built once per process into a temporary directory; None where it cannot be."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    exe = os.path.join(tempfile.mkdtemp(prefix="ember_core_latency_"), "core_latency")
    built = subprocess.run([cc, "-O2", "-pthread", SOURCE, "-o", exe], capture_output=True)
    return exe if built.returncode == 0 else None


def available() -> bool:
    """Whether the probe can run here: two allowed CPUs and a C compiler (built on first ask)."""
    return len(os.sched_getaffinity(0)) >= 2 and _program() is not None


def round_trip_ns(trips: int = 20000) -> float | None:
    """Nanoseconds per core-to-core round trip between the first two allowed CPUs, or None where
    there is one CPU or no C compiler."""
    exe = _program()
    if exe is None:
        return None
    run = subprocess.run([exe, str(trips)], capture_output=True, text=True, timeout=60)
    return float(run.stdout) if run.returncode == 0 else None


if __name__ == "__main__":
    found = round_trip_ns(100000)
    print("one CPU or no C compiler" if found is None else f"{found:.0f} ns per round trip")
    sys.exit(0 if found is not None else 1)
