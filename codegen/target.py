"""Target descriptions: which machine a model library is compiled for.

A ``Target`` names the architecture (``x86-64``, ``aarch64``, ``cuda``), the CPU model and features,
and converts itself into the JSON-dict form TVM 0.27 expects. The host CPU is detected from
``/proc/cpuinfo``; every field can be overridden, e.g. ``parse_target("x86-64:mcpu=skylake-avx512")``.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field, replace

from .errors import CodegenError

# x86 CPU flags from /proc/cpuinfo -> LLVM features, in rough order of generations.
_X86_FLAG_TO_FEATURE = {
    "sse4_2": "+sse4.2",
    "avx": "+avx",
    "avx2": "+avx2",
    "fma": "+fma",
    "f16c": "+f16c",
    "avx512f": "+avx512f",
    "avx512bw": "+avx512bw",
    "avx512dq": "+avx512dq",
    "avx512vl": "+avx512vl",
    "avx512cd": "+avx512cd",
    "avx512_vnni": "+avx512vnni",
    "avx512_bf16": "+avx512bf16",
}
_KNOWN_KINDS = ("x86-64", "aarch64", "cuda")


@dataclass(frozen=True)
class Target:
    """What to generate code for.

    ``kind`` selects the backend; ``mcpu``/``features`` tune LLVM; ``vector_bits`` guides schedules
    (vector width in bits of the widest float SIMD unit); ``num_cores`` is the default parallelism.
    """

    kind: str = "x86-64"
    mcpu: str = "generic"
    features: tuple[str, ...] = ()
    triple: str = ""
    vector_bits: int = 128
    num_cores: int = 1
    cuda_arch: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def vector_lanes_f32(self) -> int:
        """How many float32 values one vector register holds."""
        return max(1, self.vector_bits // 32)

    def to_tvm(self) -> dict:
        """The TVM 0.27 JSON-dict target (``tvm.target.Target(target.to_tvm())``)."""
        if self.kind == "cuda":
            return {
                "kind": "cuda",
                "arch": self.cuda_arch or "sm_80",
                "host": {"kind": "llvm", "mcpu": detect_host().mcpu},
            }
        spec: dict = {"kind": "llvm", "mcpu": self.mcpu}
        if self.triple:
            spec["mtriple"] = self.triple
        if self.features:
            spec["mattr"] = list(self.features)
        spec["num-cores"] = self.num_cores
        return spec

    def c_compiler(self) -> str:
        """The C compiler that links libraries for this target (a cross compiler off-host)."""
        host = platform.machine()
        if self.kind == "aarch64" and host not in ("aarch64", "arm64"):
            return os.environ.get("EMBER_CC_AARCH64", "aarch64-linux-gnu-gcc")
        return os.environ.get("EMBER_CC", "gcc")

    def describe(self) -> str:
        feats = ",".join(f.lstrip("+") for f in self.features) or "baseline"
        return f"{self.kind} (mcpu={self.mcpu}, features={feats}, {self.vector_bits}-bit vectors)"


def _read_cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    key, _, val = line.partition(":")
                    info.setdefault(key.strip(), val.strip())
    except OSError:
        pass
    return info


def _x86_mcpu(flags: set[str], vendor: str, family: str) -> str:
    if vendor == "AuthenticAMD" and family == "25" and "avx512f" in flags:
        return "znver4"
    if vendor == "AuthenticAMD" and family == "25":
        return "znver3"
    if "avx512f" in flags:
        return "skylake-avx512"
    if "avx2" in flags:
        return "haswell"
    return "x86-64"


def detect_host() -> Target:
    """The machine Ember runs on, with CPU features from /proc/cpuinfo."""
    machine = platform.machine()
    cores = os.cpu_count() or 1
    if machine in ("aarch64", "arm64"):
        return Target("aarch64", "generic", ("+neon",), "aarch64-linux-gnu", 128, cores)
    info = _read_cpuinfo()
    flags = set(info.get("flags", "").split())
    features = tuple(feat for flag, feat in _X86_FLAG_TO_FEATURE.items() if flag in flags)
    bits = 512 if "avx512f" in flags else 256 if "avx2" in flags or "avx" in flags else 128
    mcpu = _x86_mcpu(flags, info.get("vendor_id", ""), info.get("cpu family", ""))
    return Target("x86-64", mcpu, features, "", bits, cores)


def parse_target(text: "str | Target | None") -> Target:
    """Parse ``KIND[:key=value,...]``; KIND is x86-64 (host-detected), aarch64 or cuda.

    Keys: ``mcpu``, ``features`` (``+avx2+fma``), ``vector_bits``, ``cores``, ``arch`` (CUDA sm_XX;
    ``cuda:sm_90`` is short for ``cuda:arch=sm_90``).
    """
    if isinstance(text, Target):
        return text
    text = (text or "x86-64").strip()
    kind, _, opts = text.partition(":")
    kind = {"x86_64": "x86-64", "host": "x86-64", "llvm": "x86-64", "arm64": "aarch64"}.get(kind, kind)
    if kind not in _KNOWN_KINDS:
        raise CodegenError(f"unknown target '{kind}'; known targets: {', '.join(_KNOWN_KINDS)}")
    if kind == "x86-64":
        host = detect_host()
        target = host if host.kind == "x86-64" else Target("x86-64", "x86-64", (), "x86_64-linux-gnu", 128, 1)
    elif kind == "aarch64":
        target = Target("aarch64", "neoverse-n1", ("+neon",), "aarch64-linux-gnu", 128, os.cpu_count() or 1)
    else:
        target = Target("cuda", "", (), "", 0, 1, "sm_80")
    for item in filter(None, opts.split(",")):
        key, eq, val = item.partition("=")
        if kind == "cuda" and not eq and item.startswith("sm_"):  # cuda:sm_90
            key, eq, val = "arch", "=", item
        if not eq:
            raise CodegenError(f"target option '{item}' is not key=value")
        if key == "mcpu":
            target = replace(target, mcpu=val)
        elif key == "features":
            target = replace(target, features=tuple("+" + f for f in val.split("+") if f))
        elif key == "vector_bits":
            target = replace(target, vector_bits=int(val))
        elif key == "cores":
            target = replace(target, num_cores=int(val))
        elif key == "arch":
            target = replace(target, cuda_arch=val)
        else:
            raise CodegenError(f"unknown target option '{key}' (known: mcpu, features, vector_bits, cores, arch)")
    return target
