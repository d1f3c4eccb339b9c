"""x86 dot-product instructions that register-tiled kernels are rebuilt onto, one record each.

Each adds, into each of its ``lanes`` accumulator lanes, the dot product of ``depth`` consecutive
narrow operand elements: the activation's ``depth`` elements (broadcast to every lane) times the
weight's ``depth`` elements of that lane.

    vpdpbusd   (AVX-512 VNNI)  int32 c[16] += sum over 4 of u8 a . s8 b         (64-byte operands)
    vdpbf16ps  (AVX-512 BF16)  f32   c[16] += sum over 2 of bf16 a . bf16 b     (32 x bf16 operands)
    vpmaddwd   (AVX2)          int32 c[8]  += sum over 2 of s16 a . s16 b       (32-byte operands)

``vpmaddwd`` does not accumulate (the kernel adds its result, ``vpaddd``); it is the integer
kernels' instruction on CPUs without VNNI, with the uint8 activations widened to int16 when they
are repacked and the int8 weights sign-extended as they are loaded (a weight buffer of another
type than ``operand`` is cast to it), so that every product and pair sum is exact (``vpmaddubsw``
takes the bytes as they are but saturates a pair sum at 32767, which 255 x 127 x 2 exceeds).

A kernel computes the product in plain TE arithmetic (correct on every target), and its schedule
calls ``rebuild_dot`` on the innermost ``lanes x depth`` loops when ``target_has(dot.feature)``.

TVM 0.27 cannot hand a bfloat16 vector to an LLVM intrinsic: its bfloat16 legalization widens
bfloat16 values to float32 and stores them as uint16, and its LLVM codegen crashes when that
legalization is skipped.  So the kernel calls a stand-in of the same shape that LLVM knows to be
pure, ``vpdpwssd`` (int32 c[16] += sum over 2 of s16 a . s16 b, which Ember does not otherwise use),
with the float32 accumulator reinterpreted as int32; LLVM optimizes the kernel around it as around
any intrinsic (accumulators stay in registers), and ``patch_llvm_ir`` then rewrites every stand-in
call in the optimized LLVM IR into ``vdpbf16ps`` on bitcast operands (``kernel.py`` rebuilds the
object from the patched text).  An extern function as the stand-in left the accumulators in memory:
LLVM must assume an unknown callee reads and writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from tvm import tirx


@dataclass(frozen=True)
class DotInstruction:
    mnemonic: str
    depth: int  # operand elements per accumulator lane
    operand: str  # the operand element type as the kernel stores it (bfloat16 as its int16 bits)
    accumulator: str
    feature: str  # the LLVM target feature that has it
    callee: str  # the LLVM intrinsic, or the stand-in that ``patch_llvm_ir`` replaces
    stand_in: bool = False
    lanes: int = 16
    accumulates: bool = True  # the instruction adds into its accumulator operand (else ``acc + dot(a, b)``)


VNNI = DotInstruction("vpdpbusd", 4, "int8", "int32", "+avx512vnni", "llvm.x86.avx512.vpdpbusd.512")
BF16_INTRINSIC = "llvm.x86.avx512bf16.dpbf16ps.512"
BF16_STAND_IN = "llvm.x86.avx512.vpdpwssd.512"  # patch_llvm_ir makes each call the intrinsic above
BF16 = DotInstruction("vdpbf16ps", 2, "int16", "float32", "+avx512bf16", BF16_STAND_IN, stand_in=True)
PMADDWD = DotInstruction("vpmaddwd", 2, "int16", "int32", "+avx2", "llvm.x86.avx2.pmadd.wd", lanes=8, accumulates=False)


def target_has(feature: str) -> bool:
    """Whether the target being built for (``kernel.py`` enters it) has ``feature``; the host's CPU
    when no target is current (schedules run by hand)."""
    import tvm

    target = tvm.target.Target.current(allow_none=True)
    if target is not None:
        return feature in [str(a) for a in target.attrs.get("mattr", [])]
    from ..target import detect_host

    return feature in detect_host().features


def rebuild_dot(sch, block, dot: DotInstruction, weight_words: bool = False, broadcast_weight: bool = False) -> None:
    """Replace the ``lanes`` x ``depth`` loops around the accumulation ``c[ki] += a[rci] * b[ki, rci]``
    (the block's last two loops) by one ``dot`` on whole vectors.  TVM 0.27's ``tensorize`` crashes
    in this wheel, so the block is rebuilt by hand: its bindings of ``ki``/``rci`` become 0 and its
    last indices become ramps.  ``weight_words``: the weight is stored as 32-bit words of ``depth``
    elements (a row of ``lanes`` words is one operand) instead of ``lanes * depth`` elements.
    ``broadcast_weight``: the lanes are pixels instead (``dot_kernels.dot_rows_accumulation``): the
    activation's ``lanes * depth`` consecutive elements are the vector operand and the weight's
    ``depth`` elements are broadcast to every lane."""
    from tvm import ir, s_tir

    ki_loop, rci_loop = sch.get_loops(block)[-2:]
    extents = tuple(int(sch.get(loop).extent) for loop in (ki_loop, rci_loop))
    if extents != (dot.lanes, dot.depth):  # a kernel laid out for another instruction
        raise ValueError(f"{dot.mnemonic} takes {dot.lanes} x {dot.depth} loops, the block has {extents}")
    ki_var, rci_var = sch.get(ki_loop).loop_var, sch.get(rci_loop).loop_var
    realize = sch.get(rci_loop).body
    old = realize.block
    store = old.body
    product = store.value.b
    a_load, b_load = one_buffer_load(product.a), one_buffer_load(product.b)
    width = dot.lanes * dot.depth
    b_lanes = dot.lanes if weight_words else width
    vector = f"{dot.operand}x{width}"

    def widened(load, lanes):
        return [*load.indices[:-1], tirx.Ramp(load.indices[-1], 1, lanes)]

    def region(buffer, indices, lanes):
        ranges = [ir.Range.from_min_extent(i, 1) for i in indices[:-1]]
        return tirx.BufferRegion(buffer, [*ranges, ir.Range.from_min_extent(indices[-1], lanes)])

    def broadcast(load):  # ``depth`` elements as one 32-bit word in every lane
        return tirx.reinterpret(vector, tirx.Broadcast(tirx.reinterpret("int32", load), dot.lanes))

    c_idx = widened(store, dot.lanes)
    a_lanes = width if broadcast_weight else dot.depth
    if broadcast_weight:
        b_lanes = dot.depth
    a_vec = tirx.BufferLoad(a_load.source, widened(a_load, a_lanes))
    b_vec = tirx.BufferLoad(b_load.source, widened(b_load, b_lanes))
    stored = str(b_load.source.dtype)
    if weight_words:  # words of ``depth`` elements: the elements' type from the word's width
        stored = f"int{np.dtype(stored).itemsize * 8 // dot.depth}"
        b_vec = tirx.reinterpret(f"{stored}x{width}", b_vec)
    if stored != dot.operand:  # bytes widened as loaded (``vpmaddwd``'s weights: vpmovsxbw)
        b_vec = tirx.Cast(f"{dot.operand}x{width if weight_words else b_lanes}", b_vec)
    acc = tirx.BufferLoad(store.buffer, c_idx)
    if broadcast_weight:
        a_all, b_vec = tirx.reinterpret(vector, a_vec), broadcast(b_vec)
    else:
        a_all = broadcast(a_vec)
    result = f"{dot.accumulator}x{dot.lanes}"
    if dot.stand_in:  # the stand-in takes and gives the accumulator's bits as int32
        bits = f"int32x{dot.lanes}"
        call = tirx.call_llvm_pure_intrin(bits, dot.callee, tirx.reinterpret(bits, acc), a_all, b_vec)
        value = tirx.reinterpret(result, call)
    elif dot.accumulates:
        value = tirx.call_llvm_pure_intrin(result, dot.callee, acc, a_all, b_vec)
    else:
        value = acc + tirx.call_llvm_pure_intrin(result, dot.callee, a_all, b_vec)
    new = s_tir.SBlock(
        old.iter_vars,
        [
            region(store.buffer, store.indices, dot.lanes),
            region(a_load.source, a_load.indices, a_lanes),
            region(b_load.source, b_load.indices, b_lanes),
        ],
        [region(store.buffer, store.indices, dot.lanes)],
        old.name_hint,
        tirx.BufferStore(store.buffer, value, c_idx),
        annotations=old.annotations,
    )
    from tvm.sym import Analyzer

    zeroed = Analyzer()  # the two loops' variables are 0 in the bindings (``x0 * 16 + xl`` -> ``x0 * 16``)
    for var in (ki_var, rci_var):
        zeroed.bind(var, tirx.const(0, str(var.ty)))
    values = [zeroed.simplify(v) for v in realize.iter_values]
    sch.state.replace(sch.get_sref(ki_loop), s_tir.SBlockRealize(values, realize.predicate, new), {old: new})


def one_buffer_load(expr):
    """The one buffer load inside ``expr`` (an operand under its casts, shifts or reinterprets)."""
    loads, todo = [], [expr]
    while todo:  # calls, casts and binary operators down to the loads
        e = todo.pop()
        if hasattr(e, "source") and hasattr(e, "indices"):  # a buffer load (TVM 0.27: TensorLoad)
            loads.append(e)
        else:
            todo += list(getattr(e, "args", [])) + [getattr(e, f) for f in ("a", "b", "value") if hasattr(e, f)]
    if len(loads) != 1:
        raise ValueError(f"expected one operand load, found {len(loads)}")
    return loads[0]


_OPERAND = r"(%[\w.]+|zeroinitializer|splat \([^()]*\)|<[^<>]*>)"
_STAND_IN_CALL = re.compile(
    r"(%[\w.]+) = (?:tail )?call <16 x i32> @" + re.escape(BF16_STAND_IN) + r"\("
    r"<16 x i32> " + _OPERAND + r", <32 x i16> " + _OPERAND + r", <32 x i16> " + _OPERAND + r"\)"
)
_STAND_IN_DECLARE = re.compile(r"declare <16 x i32> @" + re.escape(BF16_STAND_IN) + r"\([^\n]*")


def uses_stand_in(llvm_ir: str) -> bool:
    return f"@{BF16_STAND_IN}(" in llvm_ir


def patch_llvm_ir(llvm_ir: str) -> str:
    """``llvm_ir`` with every stand-in call made the ``vdpbf16ps`` intrinsic (module docstring);
    raises if a stand-in call is left in a form this does not recognise."""
    count = 0

    def call(match: re.Match) -> str:
        nonlocal count
        count += 1
        result, acc, a, b = match.groups()
        c, a16, b16, r = (f"%ember.bf16.{part}{count}" for part in "cabr")
        return (
            f"{c} = bitcast <16 x i32> {acc} to <16 x float>\n"
            f"  {a16} = bitcast <32 x i16> {a} to <32 x bfloat>\n"
            f"  {b16} = bitcast <32 x i16> {b} to <32 x bfloat>\n"
            f"  {r} = call <16 x float> @{BF16_INTRINSIC}(<16 x float> {c}, <32 x bfloat> {a16}, <32 x bfloat> {b16})\n"
            f"  {result} = bitcast <16 x float> {r} to <16 x i32>"
        )

    patched = _STAND_IN_CALL.sub(call, llvm_ir)
    patched = _STAND_IN_DECLARE.sub(
        f"declare <16 x float> @{BF16_INTRINSIC}(<16 x float>, <32 x bfloat>, <32 x bfloat>)", patched
    )
    if uses_stand_in(patched):
        raise RuntimeError(f"a {BF16_STAND_IN} call is left in a form patch_llvm_ir does not recognise")
    return patched
