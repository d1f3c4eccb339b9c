"""Build one kernel for CUDA: KernelSpec -> TE -> GPU-scheduled TIR -> CUDA C source + launch table.

The TE comes from the same lowerings as on CPU (``codegen.tvm.kernel.spec_to_te``). The schedule
is TVM's DLight GPU rule set (matmul, GEMV, reductions, then a fallback that binds every spatial
loop nest to blocks and threads), with Ember's own rules before them (``codegen/cuda/schedule.py``).

TVM 0.27 emits the device code as CUDA C and a host function that launches it. The host function
is read just before TVM wraps it in its packed API (``MakePackedAPI``): there, each launch is a
``call_ffi_kernel(name, args..., launch values...)`` whose pointer arguments are the data of the
kernel's parameters or of global scratch buffers the host allocates. Those become a
``KernelLaunch`` table that Ember's own C host driver replays through the CUDA driver API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tvm
from tvm import tirx

from ..errors import CodegenError
from ..plan import KernelSpec
from ..tvm.kernel import spec_to_te
from .schedule import gpu_schedule
from .tensor_core import tensor_core_capable

SCRATCH_ALIGN = 256  # cuMemAlloc's alignment; every scratch buffer starts on it


@dataclass(frozen=True)
class KernelLaunch:
    """One ``cuLaunchKernel``: ``args`` are ("param", k) (the k-th kernel tensor) or ("scratch",
    byte offset in the scratch area); ``grid``/``block`` are xyz; ``shared`` is dynamic shared memory."""

    function: str
    args: tuple
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared: int = 0


@dataclass
class CudaKernel:
    """A compiled-to-source kernel: its CUDA C, the launches in order, and scratch bytes it needs."""

    name: str
    source: str
    launches: list[KernelLaunch] = field(default_factory=list)
    scratch_bytes: int = 0
    schedule: str = "dlight"
    dropped_guards: int = 0  # run-time operand checks of the CPU path that the GPU kernel does not make


def build_cuda_kernel(spec: KernelSpec, func_name: str, target_json: dict, tensor_cores: bool = True) -> CudaKernel:
    """Lower, schedule and generate ``spec`` as CUDA C whose kernels are named ``<func_name>_kernel*``;
    ``tensor_cores=False`` keeps 16-bit (float16, bfloat16) products on SIMT cores."""
    guards: list = []
    placeholders, outputs = spec_to_te(spec, guards)
    func = tvm.te.create_prim_func(placeholders + outputs).with_attr("global_symbol", func_name)
    target = tvm.target.Target(target_json)
    try:
        kernel = scheduled_kernel(func, target, func_name, len(placeholders) + len(outputs), tensor_cores)
    except CodegenError as exc:
        raise CodegenError(f"kernel {spec.label}: {exc}") from None
    except Exception as exc:
        last = str(exc).strip().splitlines()[-1][:400] if str(exc).strip() else ""
        raise CodegenError(
            f"kernel {spec.label}: CUDA schedule or codegen failed: {type(exc).__name__}: {last}"
        ) from None
    kernel.dropped_guards = len(guards)
    return kernel


def scheduled_kernel(func, target, func_name: str, num_params: int, tensor_cores: bool = True) -> CudaKernel:
    """``func`` scheduled for the GPU and generated; a 16-bit product whose tensor-core form TVM's
    code generation refuses is generated again on SIMT cores (``kernel.schedule`` says which)."""
    try:
        mod = gpu_schedule(tvm.IRModule({"main": func}), target, tensor_cores)
        return _generate(mod, target, func_name, num_params)
    except Exception:
        if not tensor_cores or not tensor_core_capable(func, target):
            raise
        return _generate(gpu_schedule(tvm.IRModule({"main": func}), target, False), target, func_name, num_params)


def _generate(mod: tvm.IRModule, target, func_name: str, num_params: int) -> CudaKernel:
    captured: dict = {}

    @tvm.instrument.pass_instrument
    class _HostBeforePackedApi:
        def run_before_pass(self, module, info):
            if info.name.endswith("MakePackedAPI"):
                captured["mod"] = module

    with tvm.transform.PassContext(instruments=[_HostBeforePackedApi()]):
        lib = tvm.tirx.build(mod, target)
    if not lib.imports:
        raise CodegenError("TVM produced no device code (nothing was bound to GPU threads)")
    source = lib.imports[0].inspect_source()
    host = [f for f in captured["mod"].functions.values() if int(f.attrs.get("calling_conv", 0) or 0) != 2]
    if len(host) != 1:
        raise CodegenError(f"expected one host function, found {len(host)}")
    launches, scratch = read_launches(host[0], num_params)
    if not launches:
        raise CodegenError("the host function launches no kernel")
    schedule = "tensor-core" if "wmma::mma_sync" in source else "dlight"
    return CudaKernel(func_name, source, launches, scratch, schedule)


def read_launches(host_func, num_params: int) -> tuple[list[KernelLaunch], int]:
    """The kernel launches of a host function (before MakePackedAPI) and its scratch bytes.

    A pointer argument is ``buffer_data(v)``, where ``v`` is a parameter, a view of one (bound
    earlier in the body) or a global buffer the host allocates (scratch, shared by all kernels
    because they run one after another on one stream)."""
    params = list(host_func.params[:num_params])
    bindings: list = []  # (var, value) of the body's let-style bindings (buffer views)
    scratch_of: list = []  # (var, byte offset)
    scratch = [0]
    calls: list = []

    def visit(node):
        kind = type(node).__name__
        if kind in ("For", "While", "IfThenElse"):
            raise CodegenError(f"the host function has control flow ({kind}) around its launches")
        if kind in ("AllocBuffer", "Allocate"):
            _note_scratch(node, scratch_of, scratch)
        elif kind == "DeclBuffer" and getattr(node, "data", None) is not None:
            bindings.append((node.buffer, node.data))  # a view: its data is (a view of) another's
        elif hasattr(node, "var") and hasattr(node, "value") and kind != "Call":
            bindings.append((node.var, node.value))
        elif _is_call(node) and getattr(node.op, "name", "").endswith("call_ffi_kernel"):
            calls.append(node)

    _walk(host_func.body, visit)

    def resolve(expr):
        for _ in range(64):
            if _is_call(expr) and len(expr.args) and getattr(expr.op, "name", "").startswith("tirx.buffer_"):
                expr = expr.args[0]
                continue
            bound = _lookup(bindings, expr)
            if bound is None:
                return expr
            expr = bound
        return expr

    def pointer(expr):
        root = resolve(expr)
        for k, param in enumerate(params):
            if param.same_as(root):
                return ("param", k)
        offset = _lookup(scratch_of, root)
        return None if offset is None else ("scratch", offset)

    return [_launch(call, pointer) for call in calls], scratch[0]


_CHILDREN = ("seq", "body", "then_case", "else_case", "value", "block")


def _is_call(node) -> bool:
    return type(node).__name__ == "Call"


def _walk(node, visit) -> None:
    """Pre-order walk over the statements (and evaluated calls) of a lowered host function."""
    if node is None:
        return
    visit(node)
    if _is_call(node):
        return
    for name in _CHILDREN:
        child = getattr(node, name, None)
        if child is None:
            continue
        if isinstance(child, (list, tuple)) or type(child).__name__ == "Array":
            for item in child:
                _walk(item, visit)
        elif isinstance(child, tirx.Stmt) or _is_call(child):
            _walk(child, visit)


def _note_scratch(node, scratch_of: list, scratch: list) -> None:
    buffer = getattr(node, "buffer", None)
    var = buffer if buffer is not None else node.buffer_var
    shape = buffer.shape if buffer is not None else node.extents
    dtype = buffer.dtype if buffer is not None else node.dtype
    elems = 1
    for d in shape:
        elems *= int(d)
    nbytes = elems * tvm.DataType(str(dtype)).bits // 8
    scratch_of.append((var, scratch[0]))
    scratch[0] += (nbytes + SCRATCH_ALIGN - 1) // SCRATCH_ALIGN * SCRATCH_ALIGN


def _launch(call, pointer) -> KernelLaunch:
    name = str(call.args[0].value)
    tags = [str(t) for t in getattr(call.attrs, "launch_params", None) or ()]
    values = list(call.args[1:])
    tail = values[len(values) - len(tags) :] if tags else []
    values = values[: len(values) - len(tags)] if tags else values
    args = []
    for value in values:
        where = None if isinstance(value, tirx.IntImm) else pointer(value)
        if where is not None:
            args.append(where)
        elif isinstance(value, tirx.IntImm):
            args.append(("int32", int(value.value)))
        else:
            raise CodegenError(f"kernel {name}: cannot pass argument {value!r} from the C host driver")
    grid, block, shared = [1, 1, 1], [1, 1, 1], 0
    for tag, value in zip(tags, tail):
        if not isinstance(value, tirx.IntImm):
            raise CodegenError(f"kernel {name}: launch parameter {tag} = {value} is not a constant")
        if tag.startswith("blockIdx."):
            grid["xyz".index(tag[-1])] = int(value.value)
        elif tag.startswith("threadIdx."):
            block["xyz".index(tag[-1])] = int(value.value)
        elif "dyn_shared" in tag:
            shared = int(value.value)
        else:
            raise CodegenError(f"kernel {name}: unknown launch parameter {tag}")
    return KernelLaunch(name, tuple(args), tuple(grid), tuple(block), shared)


def _lookup(pairs: list, var):
    """The value paired with ``var`` by object identity (``==`` on TIR variables builds an expression)."""
    for key, value in pairs:
        if key.same_as(var):
            return value
    return None
