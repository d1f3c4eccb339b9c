"""Build one kernel: KernelSpec -> TE -> scheduled TIR -> object file with one packed function."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tvm
from tvm import te, tirx, topi

from ..errors import CodegenError
from ..plan import KernelSpec, unhash
from ..target import ScheduleParams
from .dot_instructions import patch_llvm_ir, uses_stand_in
from .dtypes import as_storage, storage_dtype
from .index_width import PARALLEL_TASKS_MAX, IndexCapture, overflowing_index_arithmetic
from .registry import LowerContext, get_lowering
from .schedule import apply_schedule
from .te_util import INT32_MAX, index_shape, size_of


def spec_to_te(spec: KernelSpec, guards: list | None = None, schedule: ScheduleParams | None = None):
    """Placeholders for the spec's inputs and the TE tensors of its outputs.

    ``guards``, when given, collects the lowerings' run-time checks (``LowerContext.require``);
    ``schedule`` gives lowerings the target's tile sizes (``LowerContext.schedule``).
    """
    placeholders = [
        te.placeholder(index_shape(shape), storage_dtype(dtype), name=f"in{k}")
        for k, (shape, dtype) in enumerate(spec.inputs)
    ]
    results: list[list] = []
    for fop in spec.ops:
        lowering = get_lowering(fop.op)
        operands = []
        for ref in fop.operands:
            if ref is None or ref[0] == "static":
                operands.append(None)
            elif ref[0] == "in":
                operands.append(placeholders[ref[1]])
            else:
                operands.append(results[ref[1]][ref[2]])
        while operands and operands[-1] is None and len(operands) > 1:
            operands.pop()
        ctx = LowerContext(
            fop.op,
            {k: as_storage(unhash(v)) for k, v in fop.attrs},
            [None if t is None else (t[0], np.dtype(t[1])) for t in fop.in_types],
            [(t[0], np.dtype(t[1])) for t in fop.out_types],
            {k: as_storage(unhash(v)) for k, v in fop.statics},
            frozenset(fop.packed),
            schedule=schedule,
            fused_operands=frozenset(
                k for k, ref in enumerate(fop.operands) if ref is not None and ref[0] not in ("static", "in")
            ),
        )
        out = lowering.build(ctx, *operands)
        if guards is not None:
            guards.extend(ctx.guards)
        elif ctx.guards:
            raise CodegenError(f"kernel {spec.label}: {fop.op} checks run-time operands; build it with build_kernel")
        results.append(list(out) if isinstance(out, (list, tuple)) else [out])
    outputs = []
    for op_index, r_index, shape, dtype in spec.outputs:
        t = results[op_index][r_index]
        if storage_dtype(dtype) != dtype and str(t.dtype) != "uint8":
            raise CodegenError(
                f"kernel {spec.label}: {spec.ops[op_index].op} cannot compute {dtype} "
                "tensors (only casts, quantisation and data movement carry them)"
            )
        dtype = storage_dtype(dtype)  # float8/int4/...: uint8 storage, see dtypes.py
        if str(t.dtype) != dtype:
            t = topi.cast(t, dtype)
        if tuple(int(d) for d in t.shape) != tuple(shape):
            if int(np.prod([int(d) for d in t.shape])) != int(np.prod(shape)):
                raise CodegenError(
                    f"kernel {spec.label}: lowering produced shape "
                    f"{tuple(int(d) for d in t.shape)}, the graph says {tuple(shape)}"
                )
            t = topi.reshape(t, shape)
        if any(t.same_as(p) for p in placeholders) or any(t.same_as(o) for o in outputs):
            t = _copy(t)
        outputs.append(t)
    return placeholders, outputs


def _copy(src):
    return te.compute(src.shape, lambda *i: src(*i), name="copy")


def anchor_kind(spec: KernelSpec) -> str:
    """The schedule family of a kernel: its first op's, or where that op is injective (a prologue
    fused before a Softmax: attention's scale and mask), the first later op's that is not."""
    kinds = [get_lowering(op.op).kind for op in spec.ops]
    return next((kind for kind in kinds if kind != "injective"), kinds[0])


def build_kernel(
    spec: KernelSpec,
    func_name: str,
    target_json: dict,
    lanes: "ScheduleParams | int",
    object_path: str,
    tuning_db: str | None = None,
) -> str:
    """Compile ``spec`` into ``object_path`` exporting ``__tvm_ffi_<func_name>``; returns the schedule
    used (``"tuned"`` where the MetaSchedule database ``tuning_db`` held one for it)."""
    lib, used = build_kernel_module(spec, func_name, target_json, lanes, tuning_db)
    lib.write_to_file(object_path)
    calls = tvm_runtime_calls(object_path)
    if calls:
        ops = ", ".join(sorted({node.op for node in spec.ops}))
        raise RuntimeError(
            f"{ops} lowers to TVM runtime function(s) {', '.join(calls)}, which a library "
            "without the TVM runtime cannot call; run this model with the interpreter "
            "(ember run MODEL) until Ember lowers it natively"
        )
    return used


def build_kernel_module(
    spec: KernelSpec, func_name: str, target_json: dict, lanes: "ScheduleParams | int", tuning_db: str | None = None
):
    """The built TVM module of ``spec`` (``lib.inspect_source("ll")`` is its LLVM IR) and the schedule used.

    ``lanes`` is the target's ``ScheduleParams`` (a bare float32 lane count means x86's tiles). A
    kernel the MetaSchedule database ``tuning_db`` (``tuning.py``) holds a schedule of for this
    target is built with that schedule instead of Ember's, which stays the fallback should it fail."""
    params = ScheduleParams.x86(lanes) if isinstance(lanes, int) else lanes
    guards: list = []
    placeholders, outputs = spec_to_te(spec, guards, params)
    func = te.create_prim_func(placeholders + outputs).with_attr("global_symbol", func_name)
    # a Let (``vector_math.bound``) whose expression is read twice defines its variable twice
    mod = tvm.tirx.transform.ConvertSSA()(tvm.IRModule({"main": func}))
    kind = "generic" if is_wide(spec) else anchor_kind(spec)  # the families' schedules assume int32 indices
    with tvm.target.Target(target_json):  # schedules may ask for the target's features (VNNI)
        scheduled, used = apply_schedule(mod, kind, params)
    tuned = _tuned(spec, func_name, target_json, params, tuning_db) if tuning_db else None
    if guards:
        scheduled = _with_guards(scheduled, placeholders, guards, spec)
        mod = _with_guards(mod, placeholders, guards, spec)
        tuned = tuned and _with_guards(tuned, placeholders, guards, spec)
    target = tvm.target.Target(target_json)
    lib = None
    if tuned is not None:
        try:
            lib, used = _build(tuned, target, spec), "tuned"
        except Exception:  # Ember's own schedule below
            lib = None
    if lib is None:
        try:
            lib = _build(scheduled, target, spec)
        except Exception:
            if used == "none":
                raise
            lib = _build(mod, target, spec)
            used = "none"
    if any(str(t.dtype) == "bfloat16" for t in placeholders + outputs):
        lib = _stand_ins_patched(lib)
    return lib, used


def _tuned(spec: KernelSpec, func_name: str, target_json: dict, params: ScheduleParams, path: str):
    """``spec``'s module as the tuning database at ``path`` schedules it, exported as ``func_name``;
    None where the database has no schedule of it for this target."""
    from .tuning import tuned_module

    tuned = tuned_module(spec, params, target_json, path)
    if tuned is None:
        return None
    return tvm.IRModule({"main": tuned["main"].with_attr("global_symbol", func_name)})


def _stand_ins_patched(lib):
    """``lib`` rebuilt from its LLVM IR with the ``vdpbf16ps`` stand-in calls made the intrinsic
    (``dot_instructions.patch_llvm_ir``), or ``lib`` itself when it calls none."""
    llvm_ir = lib.inspect_source("ll")
    if not uses_stand_in(llvm_ir):
        return lib
    with tempfile.TemporaryDirectory(prefix="ember-ll-") as tmp:
        path = os.path.join(tmp, "kernel.ll")
        with open(path, "w") as f:
            f.write(patch_llvm_ir(llvm_ir))
        return tvm.runtime.load_module(path)


def largest_tensor(spec: KernelSpec) -> int:
    """Elements of the largest tensor of ``spec``: an input, an output or a value inside."""
    types = [*spec.inputs, *(out[2:] for out in spec.outputs)]
    types += [t for op in spec.ops for t in (*op.in_types, *op.out_types) if t is not None]
    return max(size_of(shape) for shape, _ in types)


def is_wide(spec: KernelSpec) -> bool:
    """Whether a tensor of ``spec`` holds more than 2^31 - 1 elements, so that the kernel indexes
    it in 64 bits (``te_util.index_shape``)."""
    return largest_tensor(spec) > INT32_MAX


def build_config(spec: KernelSpec) -> dict:
    """TVM pass options for building ``spec``: none, unless it is wide (``is_wide``), when
    automatic loop unrolling is off: TVM 0.27's UnrollLoop multiplies a loop's extent by its
    body's step count in 32 bits, and an overflowed (negative) product reads as small enough to
    unroll a billion iterations."""
    return {"tirx.UnrollLoop": {"auto_max_depth": -1}} if is_wide(spec) else {}


def _build(mod, target, spec: KernelSpec):
    """``tvm.tirx.build(mod, target)`` under ``build_config(spec)``. A kernel with a tensor of
    more than 2^31 - 1 - ``PARALLEL_TASKS_MAX`` elements is refused (a CodegenError) where its
    lowered TIR holds int32 index arithmetic that may wrap (``index_width``): it would compute a
    wrong answer silently."""
    mod = tvm.tirx.transform.ConvertSSA()(mod)  # the Lets that inlining copied (see build_kernel_module)
    config = build_config(spec)
    capture = IndexCapture() if largest_tensor(spec) > INT32_MAX - PARALLEL_TASKS_MAX else None
    if not config and capture is None:
        return tvm.tirx.build(mod, target)
    with tvm.transform.PassContext(config=config, instruments=[capture] if capture else []):
        lib = tvm.tirx.build(mod, target)
    if capture is not None:
        found = overflowing_index_arithmetic(capture.module) if capture.module else ["(the lowered kernel not seen)"]
        if found:
            ops = ", ".join(sorted({op.op for op in spec.ops}))
            raise CodegenError(
                f"kernel {spec.label} ({ops}) computes indices of its tensors of about 2^31 elements or more in "
                f"32 bits that may wrap ({'; '.join(found[:3])}), so it is not supported yet (run the model "
                "with the interpreter)"
            )
    return lib


def _with_guards(mod, placeholders, guards, spec):
    """``mod`` whose main function first asserts each guard (a failing one returns an error)."""
    func = mod["main"]
    buffers = list(func.params[: len(placeholders)])  # TVM 0.27: buffer-typed parameter vars

    def read(tensor, *index):
        for placeholder, buffer in zip(placeholders, buffers):
            if tensor.same_as(placeholder):
                return tirx.BufferLoad(
                    buffer, [tirx.const(int(i), "int64") if isinstance(i, int) else i for i in index]
                )
        raise CodegenError(f"kernel {spec.label}: a run-time check reads a tensor that is not a kernel input")

    checks = []
    for predicate, message in guards:
        condition = predicate(read)
        if isinstance(condition, tirx.Stmt):  # a check that loops over an operand (te_util.require_all)
            checks.append(condition)
            continue
        if isinstance(condition, bool):
            if condition:
                continue
            condition = tirx.const(False, "bool")
        # TVM 0.27's Python AssertStmt passes (kind, condition) to a constructor that takes
        # (condition, kind): call the constructor directly
        checks.append(
            tirx._ffi_api.AssertStmt(condition, tvm.ir.StringImm("ValueError"), [tvm.ir.StringImm(message)], None)
        )
    if not checks:
        return mod
    body = tirx.SeqStmt([*checks, func.body])
    return tvm.IRModule({"main": func.with_body(body)})


def tvm_runtime_calls(object_path: str) -> list[str]:
    """Names of TVM packed functions an object file looks up at run time (``.tvm_func.<name>`` slots).

    Such lookups go through the TVM runtime's module imports, which a runtime-free library does
    not have: the call would dereference a NULL slot, so these kernels are refused at compile time.
    """
    with open(object_path, "rb") as f:
        data = f.read()
    names = set()
    for chunk in data.split(b".tvm_func.")[1:]:
        names.add(chunk.split(b"\0", 1)[0].decode("ascii", "replace"))
    return sorted(names)
