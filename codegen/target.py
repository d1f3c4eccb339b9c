"""Target descriptions: which machine a model library is compiled for.

A ``Target`` names the architecture (``x86-64``, ``aarch64``, ``cuda``), the CPU model and features,
and converts itself into the JSON-dict form TVM 0.27 expects. The host CPU is detected from
``/proc/cpuinfo``; every field can be overridden, e.g. ``parse_target("x86-64:mcpu=skylake-avx512")``.

``aarch64`` defaults to a generic ARMv8.2-A with NEON; ``aarch64:mcpu=NAME`` picks a board preset
(``AARCH64_PRESETS``: cortex-a76 for the Raspberry Pi 5, cortex-a78ae for Jetson Orin, neoverse-v1
for Graviton 3 with SVE). ``Target.schedule_params()`` gives the CPU schedules their tile sizes from
the vector width and register count (see ``ScheduleParams``).
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
    "amx_tile": "+amx-tile",
    "amx_int8": "+amx-int8",
    "amx_bf16": "+amx-bf16",
}
_KNOWN_KINDS = ("x86-64", "aarch64", "cuda")
_OPTION_KEYS = ("mcpu", "features", "vector_bits", "cores", "arch", "tensor_cores")


@dataclass(frozen=True)
class AArch64Preset:
    """An aarch64 CPU: its LLVM features and the SIMD unit the fixed-width schedules target.

    ``vector_bits`` is the width LLVM's fixed-length vectors use: 128 (NEON) even where the core has
    wider SVE, which LLVM uses only for scalable loops; ``sve_bits`` records the SVE width.
    """

    features: tuple[str, ...]
    vector_bits: int = 128
    vector_registers: int = 32
    sve_bits: int = 0
    board: str = ""


AARCH64_PRESETS = {
    "generic": AArch64Preset(("+v8.2a", "+neon"), board="any ARMv8.2-A"),
    "cortex-a76": AArch64Preset(("+v8.2a", "+neon", "+fullfp16", "+dotprod"), board="Raspberry Pi 5"),
    "cortex-a78ae": AArch64Preset(("+v8.2a", "+neon", "+fullfp16", "+dotprod"), board="NVIDIA Jetson Orin"),
    "neoverse-v1": AArch64Preset(
        ("+v8.4a", "+neon", "+fullfp16", "+dotprod", "+sve", "+bf16", "+i8mm"), sve_bits=256, board="AWS Graviton 3"
    ),
}


# x86 cores with 512-bit vectors whose FMA pipes are 256 bits wide (``ScheduleParams.conv_half_vectors``)
HALF_WIDTH_FMA_CPUS = ("znver4",)


@dataclass(frozen=True)
class ScheduleParams:
    """Tile sizes of the CPU schedules, derived from a target's float32 lanes and vector registers.

    ``conv_blocks`` blocks of ``conv_block`` output channels (``conv_block // lanes`` vectors each) x
    up to ``conv_tile`` output pixels are the conv's register tile (fewer blocks where the channel
    blocks do not divide), and ``conv_block`` is the packed weight's innermost axis;
    the matmul tile is ``rows x (nv * lanes)`` with ``nv <= mm_vectors`` and
    ``rows = min(mm_max_rows, mm_accumulators // nv)``. ``conv_taps_outside`` orders the conv's
    reduction (kernel row, kernel column, input channel) instead of (channel, row, column): the
    innermost loop is then the channel loop, which LLVM keeps rolled, where a 3x3 tap loop is
    unrolled nine times and (scheduled for cortex-a76 or neoverse-v1) has all 36 weight vectors
    loaded up front and spilled to the stack (docs/aarch64.md).
    ``accumulators`` is how many vector registers the pixel-vector tiles (pointwise and few-channel
    convs) accumulate in. ``conv_shared_broadcasts`` counts, when sizing a conv's pixel tile, the
    input broadcasts that a kernel row's unrolled taps share as live registers; without it only the
    accumulators, the weight vectors and one broadcast must fit. ``pointwise`` computes 1x1 convs as
    products of pixel vectors (``lower/nn/conv.py``) whatever the conv block; by default only where
    the block is one vector. ``flat_planes`` tiles a 1x1 conv's small plane as one row where its rows
    are not whole pixel tiles (measured on AVX2 only, whose 6-pixel tile leaves 7-wide rows a 4 and a
    3; AVX-512's 12 gives them one 7-pixel tile of 14 accumulators). ``pointwise_vectors`` lists a
    pointwise tile's pixel-vector counts in order of preference among the tiles of the most
    accumulators: AVX-512 takes the widest (fewest broadcasts per product); AVX2 takes 6 rows x 2
    vectors, the matmul tile's shape, before 4 x 3 (which streams the input 6 / 4 as often) and
    12 x 1 (13 loads per 12 products, whose next iteration LLVM's znver3 model hoists, spilling 8
    accumulators). ``pointwise_padded_tiles`` pads a plane that is copied zero-padded anyway (not whole
    vectors) to whole tiles, not only to whole vectors, so that a 14 x 14 plane (24.5 vectors) takes
    AVX2's 6 x 2 tile (measured on AVX2 only). ``pointwise_padded_rows`` lets a pointwise tile's
    rows not divide the output channels (rounding them up; measured on AVX2 only, where 256 channels
    took a 4 x 2 tile, 8 accumulators, rather than 6 x 2). ``depthwise_accumulators`` bounds a 3 x 3 depthwise
    conv's tile of output rows x column vectors (``schedule_pixel_conv.depthwise_rows``; 0 keeps one
    row): 8 on AVX2 and AVX-512, whose one-row tiles (one vector at 14 wide, 4 at 56) left the FMA
    pipes waiting on each tap's add into the same few registers. ``depthwise_row_pad_divisor``
    divides ``DW_ROW_PAD_BYTES`` (4 MiB, measured on a Zen 4, 1 MiB of L2 a core), the input size
    above which a depthwise conv pads its input a row at a time rather than in a pass of its own: 4,
    measured on a Zen 3 (AVX2, 512 KiB of L2), where MobileNetV3's 64 x 112 x 112 (3.2 MB) 3 x 3
    stride-2 conv took 0.78 ms padded in a pass and 0.27 ms by rows (onnxruntime: 0.14), and
    MobileNetV2's 32 x 112 x 112 (1.6 MB) stride-1 conv 0.30 and 0.19-0.21 ms (onnxruntime: 0.23),
    and on an AVX-512 Xeon (2 MiB of L2). There, with 8 accumulators as well, interleaved against
    one-row tiles and 4 MiB (``compare_libraries.py``, 21 runs, 1 / 2 threads): MobileNetV3-Large
    0.920 / 0.955, MobileNetV2 0.935 / 1.002, EfficientNet-B0 0.915 / 0.952 (8 accumulators alone
    0.95-0.97 at 1 thread, the divisor alone 0.94-0.97; 16 accumulators no better than 8).
    ``int8_dot`` names the instruction the integer
    kernels (QLinearConv, MatMulInteger) are laid out for: ``vpdpbusd`` (16 lanes x 4 bytes, AVX-512
    VNNI; plain int32 arithmetic on a target without it) or, on AVX2, ``vpmaddwd`` (8 lanes x 2
    int16; ``codegen/tvm/dot_instructions.py``). ``conv_chunk_bytes`` splits a 1x1 packed conv's
    channel loop into chunks of that many weight bytes, run outside the pixel tiles
    (``schedule.conv_channel_chunk``; 0: none; measured on AVX2 only, where 8 KiB took ResNet's
    2048 -> 512 conv at 7 x 7 from 2.04 to 1.53 ms). ``mm_chunk_bytes`` splits a matmul's K loop into
    chunks of that many bytes of a register tile's column panel of B, run outside the row blocks
    (``schedule_matmul.matmul_k_chunk``; 0: none; measured on AVX2 only, where 24 KiB, 384 steps of a
    16-column panel, took BERT-base 0.95-0.97x and ViT-B/16 0.96-0.97x of their time, 1 and 2
    threads; 256 steps gained less). ``conv_rows_innermost`` runs a full ``conv_tile`` of a conv with
    several kernel columns over (input channel, kernel column, kernel row): the rows of one column
    read distinct inputs, where the columns of one row read overlapping ones, whose broadcasts
    LLVM keeps live and spills at 6 pixels x 2 vectors (measured on AVX2 only: 3x3 convs on 24-,
    30- and 48-wide rows 1.15-1.19x faster; 4- and 5-pixel tiles, whose shared broadcasts fit,
    were the same or slower that way, so they keep the order). ``pointwise_wide_plane_pixels``: a 1x1
    conv over at least this many pixels is a product of pixel vectors (``pointwise``) whatever its
    input channels, not only up to ``POINTWISE_MAX_INPUT_CHANNELS`` (0: never). On an AVX-512 Xeon,
    56 x 56: ResNet-50's 256 -> 128 conv there went from 1.94 to 1.68 ms, 256 -> 64 from 1.00 to
    0.94; at 14 x 14, 256 -> 1024 went from 0.78 to 0.91 ms, and 28 x 28 was even. Interleaved
    (``compare_libraries.py``, 15 runs, 1 / 2 threads): ResNet-50 0.963 / 0.965, DenseNet-121
    0.974 / 0.961 (from 28 x 28 up: 0.974 / 0.954 and 0.997 / 0.922). ``bf16_pairs``: bfloat16
    Conv and MatMul by a constant take the channel-pair kernels of ``lower/nn/conv_bf16.py`` and
    ``lower/matmul_bf16.py`` (``vdpbf16ps`` where the target has AVX-512 BF16); without it their
    bfloat16 weights are widened to float32 at compile time (exactly) and they take the float32
    kernels, the activations widened as they are read. Off on x86 CPUs with AMX-BF16 (Intel's
    Xeons since Sapphire Rapids), where ``vdpbf16ps`` issues at a quarter of ``vfmadd231ps``'s rate
    (``benchmarks/dot_throughput.c``: 1.85 against 7.3 G/s), so that the pair kernels ran bfloat16
    ResNet-50 and BERT-base at 1.41x and 1.39x their float32 time (docs/compression-kernels.md).
    ``bf16_amx``: there, a bfloat16 MatMul by a constant whose rows are a multiple of 16 and K of 32,
    and a bfloat16 1x1 conv with 32k input and 16k output channels, run on AMX tiles instead
    (``lower/matmul_amx.py``); ``int8_amx`` (AMX-INT8): MatMulInteger's uint8 x int8 product too,
    where K is a multiple of 64, and QLinearConv's 1x1 row kernel from 128 input channels.
    ``conv_half_vectors``: a conv whose output channels are a multiple of 3 half vectors but not of
    the block (24, 72, 120 channels on 16 lanes) takes blocks of half a vector, 3 to a register tile,
    instead of whole blocks whose last one is partly zeros. Only on cores whose FMA pipes are half
    the vector width (a Zen 4 runs each 512-bit FMA as two 256-bit halves), where a half-vector FMA
    costs half as much; elsewhere it costs as much as a whole one. On a Zen 4, DBNet's 3x3 convs
    96 -> 24 at 160 x 160 (2 x 16 channels, a quarter of them zeros) went from 14.4 to 11.4 ms
    (61% -> 78% of the FMA peak) and the whole model took 0.92 / 0.92 of its time at 1 / 2 threads
    (``compare_libraries.py``, 15 runs); MobileNets, EfficientNet-B0 and ShuffleNetV2, whose 24- and
    72-channel convs are 1x1 pixel-vector products, were unchanged.
    ``vector_ldexp``: the target scales a float vector by powers of two in one instruction (AVX-512's
    ``vscalefps``, what LLVM makes of ``llvm.ldexp``), which SiLU's e^ takes in place of clamping
    its argument and adding to the exponent bits (``lower/vector_math.swish_f32``); elsewhere LLVM
    expands ``llvm.ldexp`` into a libm call per lane.
    ``depthwise_column_taps``: a depthwise kernel of at least this many taps runs a kernel column at
    a time (``schedule_pixel_conv._column_outer``): 10 on x86, where 3 x 3 kernels measured faster
    with their kernel rows outermost, 9 on aarch64, whose tile is sized by its registers instead.
    ``depthwise_vector_tiles``: a depthwise output row is computed in whole vectors (not 16 columns)
    and its register tile is 1 to ``DW_COLUMN_OUTER_VECTORS`` vectors wide, whichever gives the most
    accumulators that fit the registers beside one kernel column's input vectors
    (``schedule_pixel_conv.depthwise_tile``). On aarch64, where the x86 tile of 64 columns was 16
    NEON vectors in one row: 14 accumulators on a 56-wide row, 5 of its 9 weights reloaded from the
    stack every row (docs/aarch64.md).
    """

    lanes: int
    registers: int = 32
    conv_block: int = 16
    conv_tile: int = 8
    conv_blocks: int = 1
    mm_vectors: int = 2
    mm_accumulators: int = 16
    mm_max_rows: int = 12
    conv_taps_outside: bool = False
    accumulators: int = 24
    conv_shared_broadcasts: bool = True
    pointwise: bool | None = None
    flat_planes: bool = False
    pointwise_vectors: tuple[int, ...] = (4, 3, 2, 1)
    pointwise_padded_tiles: bool = False
    pointwise_padded_rows: bool = False
    depthwise_accumulators: int = 0
    depthwise_row_pad_divisor: int = 1
    int8_dot: str = "vpdpbusd"
    conv_chunk_bytes: int = 0
    mm_chunk_bytes: int = 0
    conv_rows_innermost: bool = False
    pointwise_wide_plane_pixels: int = 0
    bf16_pairs: bool = True
    bf16_amx: bool = False
    int8_amx: bool = False
    conv_half_vectors: bool = False
    vector_ldexp: bool = False
    depthwise_column_taps: int = 10
    depthwise_vector_tiles: bool = False

    @classmethod
    def x86(cls, lanes: int, registers: int = 32) -> "ScheduleParams":
        """x86's tiles: with 512-bit vectors (a 16-channel block is one register) 2 blocks x 12
        pixels, 24 accumulators. With AVX2's 16 registers, 12 accumulate, as in BLIS's 6 x 16
        Haswell kernel: a conv block of 16 channels (2 vectors) x 6 pixels and a 6 x 2-vector
        matmul tile, whose broadcasts LLVM reloads rather than keeps (measured on a Zen 3, one
        thread, against onnxruntime: the 8 x 2 matmul tile that spilled 2.05x -> 1.27x, 3x3 convs at
        14 x 14 on 2-pixel tiles 1.84x -> 1.04x, 1x1 convs of few channels as pixel-vector products
        1.45x -> 1.00x; ``docs/performance.md``)."""
        if lanes >= 16 and registers >= 32:
            return cls(
                lanes,
                registers,
                conv_tile=12,
                conv_blocks=2,
                depthwise_accumulators=8,
                depthwise_row_pad_divisor=4,
                pointwise_wide_plane_pixels=56 * 56,
            )
        if registers <= 16:
            return cls(
                lanes,
                registers,
                conv_tile=6,
                mm_accumulators=12,
                accumulators=12,
                conv_shared_broadcasts=False,
                pointwise=True,
                flat_planes=True,
                pointwise_vectors=(2, 3, 1),
                pointwise_padded_tiles=True,
                pointwise_padded_rows=True,
                depthwise_accumulators=8,
                depthwise_row_pad_divisor=4,
                int8_dot="vpmaddwd",
                conv_chunk_bytes=8192,
                mm_chunk_bytes=24576,
                conv_rows_innermost=True,
            )
        return cls(lanes, registers)

    @property
    def pointwise_products(self) -> bool:
        """Whether 1x1 convs are products of pixel vectors (``pointwise``, else a one-vector block)."""
        return self.conv_block == self.lanes if self.pointwise is None else self.pointwise

    def mm_rows(self, nv: int) -> int:
        """Rows of the matmul register tile when it is ``nv`` vectors wide."""
        return max(1, min(self.mm_max_rows, self.mm_accumulators // nv))


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
    vector_registers: int = 32
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    cuda_tensor_cores: bool = True  # 16-bit float products on tensor cores (``cuda:sm_90,tensor_cores=0``: SIMT)

    @property
    def vector_lanes_f32(self) -> int:
        """How many float32 values one vector register holds."""
        return max(1, self.vector_bits // 32)

    def schedule_params(self) -> ScheduleParams:
        """The CPU schedules' tile sizes for this target.

        x86 keeps the tiles tuned for AVX-512 at every vector width: 2 blocks of 16 output channels
        x 12 pixels for conv, i.e. up to 24 accumulators (one block x 8 pixels, 8 accumulators, left
        the FMA pipes of a Zen 5 core half fed: ResNet-50's convs ran 1.2-1.4x slower,
        ``benchmarks/kernels.py compare --only conv``), and 8 x 2 or 12 x 1 vectors for matmul.
        aarch64 sizes them from its registers: of the
        32 NEON registers, 8 are left for weights, inputs and addresses and the rest accumulate, so
        the conv tile is 4 vectors (16 channels) x 6 pixels and the matmul 6 rows x 4 vectors; a
        depthwise tile is 1 or 2 vectors x the rows that fit beside a kernel column's inputs.
        """
        lanes = self.vector_lanes_f32
        if self.kind != "aarch64":
            amx = "+amx-bf16" in self.features  # ScheduleParams.bf16_pairs and bf16_amx
            int8_amx = "+amx-int8" in self.features
            params = ScheduleParams.x86(lanes, self.vector_registers)
            half = self.mcpu in HALF_WIDTH_FMA_CPUS and lanes >= 16  # ScheduleParams.conv_half_vectors
            return replace(
                params,
                bf16_pairs=not amx,
                bf16_amx=amx,
                int8_amx=int8_amx,
                conv_half_vectors=half,
                vector_ldexp="+avx512f" in self.features,
            )
        accumulators = max(4, self.vector_registers - 8)
        conv_vectors = 4 if accumulators >= 16 else 2
        return ScheduleParams(
            lanes,
            self.vector_registers,
            conv_block=lanes * conv_vectors,
            conv_tile=accumulators // conv_vectors,
            mm_vectors=conv_vectors,
            mm_accumulators=accumulators,
            mm_max_rows=12,
            conv_taps_outside=True,
            depthwise_accumulators=accumulators,
            depthwise_column_taps=9,
            depthwise_vector_tiles=True,
        )

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
        return aarch64_target("generic", cores)
    info = _read_cpuinfo()
    flags = set(info.get("flags", "").split())
    features = tuple(feat for flag, feat in _X86_FLAG_TO_FEATURE.items() if flag in flags)
    bits = 512 if "avx512f" in flags else 256 if "avx2" in flags or "avx" in flags else 128
    mcpu = _x86_mcpu(flags, info.get("vendor_id", ""), info.get("cpu family", ""))
    return Target("x86-64", mcpu, features, "", bits, cores, vector_registers=32 if "avx512f" in flags else 16)


def aarch64_target(mcpu: str = "generic", cores: int | None = None) -> Target:
    """An aarch64 target for ``mcpu``: a preset's features, else NEON on ARMv8.2-A."""
    preset = AARCH64_PRESETS.get(mcpu, AARCH64_PRESETS["generic"])
    return Target(
        "aarch64",
        mcpu,
        preset.features,
        "aarch64-linux-gnu",
        preset.vector_bits,
        cores or os.cpu_count() or 1,
        vector_registers=preset.vector_registers,
    )


def parse_target(text: "str | Target | None") -> Target:
    """Parse ``KIND[:key=value,...]``; KIND is x86-64 (host-detected), aarch64 or cuda.

    Keys: ``mcpu`` (on aarch64 also a preset of ``AARCH64_PRESETS``), ``features`` (``+avx2+fma``),
    ``vector_bits``, ``cores``, ``arch`` (CUDA sm_XX; ``cuda:sm_90`` is short for ``cuda:arch=sm_90``),
    ``tensor_cores`` (CUDA: ``0`` keeps float16 and bfloat16 products on SIMT cores; default ``1``).
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
        target = aarch64_target()
    else:
        target = Target("cuda", "", (), "", 0, 1, "sm_80")
    options: dict[str, str] = {}
    for item in filter(None, opts.split(",")):
        key, eq, val = item.partition("=")
        if kind == "cuda" and not eq and item.startswith("sm_"):  # cuda:sm_90
            key, eq, val = "arch", "=", item
        if not eq:
            raise CodegenError(f"target option '{item}' is not key=value")
        if key not in _OPTION_KEYS:
            raise CodegenError(f"unknown target option '{key}' (known: {', '.join(_OPTION_KEYS)})")
        options[key] = val
    if "mcpu" in options:  # first: an aarch64 preset sets the features the other keys may override
        mcpu = options["mcpu"]
        target = aarch64_target(mcpu, target.num_cores) if kind == "aarch64" else replace(target, mcpu=mcpu)
    if "features" in options:
        target = replace(target, features=tuple("+" + f for f in options["features"].split("+") if f))
    if "vector_bits" in options:
        bits = int(options["vector_bits"])
        target = replace(target, vector_bits=bits)
        if kind == "x86-64":  # AVX-512 has 32 vector registers, AVX2 and SSE 16, whatever the host has
            target = replace(target, vector_registers=32 if bits >= 512 else 16)
    if "cores" in options:
        target = replace(target, num_cores=int(options["cores"]))
    if "arch" in options:
        target = replace(target, cuda_arch=options["arch"])
    if "tensor_cores" in options:
        if kind != "cuda" or options["tensor_cores"] not in ("0", "1"):
            raise CodegenError(f"target option tensor_cores={options['tensor_cores']}: 0 or 1, on cuda only")
        target = replace(target, cuda_tensor_cores=options["tensor_cores"] == "1")
    return target
