"""From a graph to an execution plan: buffers, kernel calls and view aliases.

The plan is target-independent and picklable. Each graph value becomes a ``Buffer``; values of view
ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity) share the ``storage`` of their source; each
remaining node, and each ``ember.Fused`` node (a group the ``fuse`` pass made; the fusion decisions
are that pass's), becomes a ``KernelCall`` whose ``KernelSpec`` fully identifies the kernel: two
calls with equal specs run the same compiled function.  An ``If`` left by ``codegen-prepare`` (a
run-time condition) becomes an ``IfStep`` of the program, each branch planned with its own calls
(``codegen/branches.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.ir.types import DType, TensorType
from compiler.ops import FlopContext, get_op

from .branches import Block, IfStep, run_cost
from .errors import CodegenError, UnsupportedOpsError
from .sizes import DEFAULT_MAX_TENSOR_BYTES, check_index_width, check_tensor_size, is_static, node_name

FUSED_OP = "ember.Fused"  # a group the ``fuse`` pass made: one kernel call
# Ops whose result is known from operand types alone (all shapes are static in a plan).
_SHAPE_FOLDS = {"Shape", "Size"}
ALIGN_BYTES = 64  # alignment kernels assume of every buffer: arena offsets (codegen.memory) and Concat slices
# Constant folding is not the planner's job: the ``codegen-prepare`` pipeline runs ``fold-constants``
# with the limits that keep anything known at compile time from being computed at run time.


@dataclass
class Buffer:
    """One tensor in the plan. ``kind``: input, output-only? no: input/const/activation."""

    id: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    kind: str  # "input" | "const" | "activation"
    storage: int  # buffers with the same storage share memory (views)
    const: np.ndarray | None = None
    offset: int = 0  # bytes into the storage (a slice of an in-place Concat)

    @property
    def nbytes(self) -> int:
        return math.prod(int(d) for d in self.shape) * self.dtype.itemsize  # Python ints: never wraps


@dataclass(frozen=True)
class FusedOp:
    """One op inside a kernel: operands are ('in', k) kernel inputs or ('tmp', j) earlier results."""

    op: str
    attrs: tuple  # sorted (name, hashable value) pairs
    operands: tuple  # per operand: ('in', k) | ('tmp', j) | ('static', k) | None
    statics: tuple  # (operand index, hashable array) pairs
    in_types: tuple
    out_types: tuple
    packed: tuple = ()  # operand indices holding prepacked constants


@dataclass(frozen=True)
class KernelSpec:
    """A kernel's full identity: its ops and the types of its inputs and outputs."""

    ops: tuple[FusedOp, ...]
    inputs: tuple  # (shape, dtype str)
    outputs: tuple  # (ops index, result index, shape, dtype str)

    @property
    def label(self) -> str:
        return "_".join(op.op.lower() for op in self.ops)[:48]


@dataclass
class KernelCall:
    """One kernel run: its spec, the buffers it reads and writes, the graph nodes it computes."""

    spec: KernelSpec
    inputs: list[int]  # buffer ids
    outputs: list[int]
    node_names: list[str]  # unnamed nodes labelled by _node_label
    flops: int = 0  # of its nodes, as each op counts them (OpDef.count_flops)


@dataclass
class Plan:
    """Buffers, the ordered kernel calls, and the graph interface."""

    name: str
    buffers: list[Buffer] = field(default_factory=list)
    calls: list[KernelCall] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    steps: list = field(default_factory=list)  # the program: call indices and IfSteps (codegen/branches.py)

    @property
    def program(self) -> list:
        """``steps``, or every call in order for a plan built without them."""
        return self.steps if self.steps or not self.calls else list(range(len(self.calls)))


def hashable(value: Any):
    """A hashable, picklable form of an attribute value (ndarray -> ('array', dtype, shape, data))."""
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, tuple(value.ravel().tolist()))
    if isinstance(value, (list, tuple)):
        return tuple(hashable(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "nodes"):  # a subgraph
        raise CodegenError("ops with subgraph attributes (Loop/Scan; If only as a whole node) cannot be kernels")
    return value


def unhash(value: Any):
    """Inverse of ``hashable`` for what lowerings read."""
    if isinstance(value, tuple) and len(value) == 4 and value[0] == "array":
        return np.array(value[3], dtype=value[1]).reshape(value[2])
    if isinstance(value, tuple):
        return [unhash(v) for v in value]
    return value


def _static_type(value, node) -> tuple[tuple[int, ...], np.dtype]:
    t = value.type
    shape = getattr(t, "shape", None)
    where = f"value '{value.name}'" + (f" of {node.op} node '{node.name}'" if node is not None else "")
    if not isinstance(t, TensorType) or t.dtype == DType.STRING:  # a sequence, an optional, strings
        raise CodegenError(
            f"{where} has type {t}, but compiled libraries carry numeric tensors only "
            "(run the model with the interpreter: compiler.interpret / `ember run` on the model file)"
        )
    if shape is None or not all(isinstance(d, int) for d in shape):
        raise CodegenError(
            f"{where} has a non-static shape {shape}; compilation needs static shapes "
            "(fix them with --input-shape NAME=d0,d1,... or run shape inference first)"
        )
    return tuple(shape), np.dtype(t.dtype.np)


class _Planner:
    """Walks the graph once, building buffers and calls."""

    def __init__(
        self, graph, get_lowering, target_name: str = "x86-64", max_tensor_bytes: int | None = None, schedule=None
    ):
        self.target_name = target_name
        self.schedule = schedule  # the target's ScheduleParams, for prepack hooks marked uses_schedule
        self.max_tensor_bytes = DEFAULT_MAX_TENSOR_BYTES if max_tensor_bytes is None else max_tensor_bytes
        self.graph = graph
        self.get_lowering = get_lowering
        self.plan = Plan(graph.name or "model")
        self.buf_of: dict[int, int] = {}  # id(Value) -> buffer id
        self.packed_cache: dict[tuple, int] = {}  # (buffer id, op, attrs) -> packed buffer id
        self.steps = self.plan.steps  # the block that calls are appended to (a branch's, inside an If)
        self.fuse = True

    # buffers --------------------------------------------------------------
    def new_buffer(self, value, node, kind, const=None, storage=None) -> int:
        if const is not None and not is_static(value):  # a folded value knows its own shape
            const = np.asarray(const)
            shape, dtype = tuple(const.shape), np.dtype(value.type.dtype.np)
        else:
            shape, dtype = _static_type(value, node)
        check_tensor_size(shape, dtype, f"value '{value.name}'", node, self.max_tensor_bytes)
        bid = len(self.plan.buffers)
        if const is not None:
            const = np.ascontiguousarray(np.asarray(const, dtype=dtype)).reshape(shape)  # 0-d stays 0-d
        self.plan.buffers.append(
            Buffer(bid, value.name or f"v{bid}", shape, dtype, kind, bid if storage is None else storage, const)
        )
        self.buf_of[id(value)] = bid
        return bid

    def const_of(self, value) -> np.ndarray | None:
        if value is None or id(value) not in self.buf_of:
            return None
        return self.plan.buffers[self.buf_of[id(value)]].const

    # driver ---------------------------------------------------------------
    def run(self, fuse: bool = True) -> Plan:
        missing: dict[str, list[str]] = {}
        nodes = list(self.graph.nodes)
        for node in _kernel_nodes(nodes):
            if node.op not in ("Constant", *_SHAPE_FOLDS) and self.get_lowering(node.op) is None:
                missing.setdefault(node.op, []).append(node.name or node.results[0].name)
        if missing:
            raise UnsupportedOpsError(missing, self.target_name)
        for value in self.graph.params:
            self.plan.inputs.append(self.new_buffer(value, None, "input"))
        self.fuse = fuse
        self.plan_nodes(nodes)
        for value in self.graph.outputs:
            self.plan.outputs.append(self.buf_of[id(value)])
            self.plan.output_names.append(value.name)
        return self.plan

    def plan_nodes(self, nodes) -> None:
        for node in nodes:
            if self.concat_in_place(node):
                continue
            if node.op == FUSED_OP:
                self.add_fused(node, self.fuse)
            elif node.op == "If":
                self.add_if(node)
            elif not self.try_fold(node):
                self.add_group([node])

    def concat_in_place(self, node) -> bool:
        """A Concat (alone, or the one node of a fused group) along an axis preceded only by size-1
        dims (channels at batch 1), whose operands are distinct activations with storage of their
        own, written by this block's kernels: each operand's storage becomes its slice of the
        Concat's buffer, so the kernels that compute the operands write the result in place and
        the Concat costs nothing (SqueezeNet's 8 fire Concats took
        0.8 ms of its 10). Each slice starts 64-byte aligned, as kernels assume of their buffers;
        otherwise, or on CUDA, the Concat stays a kernel (False)."""
        concat, operands = node, list(node.operands)
        if node.op == FUSED_OP:
            body = node.attrs["body"]
            inner = list(body.nodes)
            if len(inner) != 1 or list(body.outputs) != list(inner[0].results):
                return False
            concat = inner[0]
            index = {id(p): k for k, p in enumerate(body.params)}
            if any(v is None or id(v) not in index for v in concat.operands):
                return False
            operands = [node.operands[index[id(v)]] for v in concat.operands]
        if concat.op != "Concat" or self.target_name == "cuda" or self.steps is not self.plan.steps:
            return False
        shape, _ = _static_type(node.results[0], node)
        axis = int(concat.attrs.get("axis", 0)) % len(shape) if shape else 0
        if not shape or any(d != 1 for d in shape[:axis]) or any(id(v) not in self.buf_of for v in operands):
            return False
        sources = [self.buf_of[id(v)] for v in operands]
        buffers = self.plan.buffers
        if len(set(sources)) != len(sources):
            return False
        offsets, offset = [], 0
        for bid in sources:
            buf = buffers[bid]
            if buf.kind != "activation" or buf.storage != bid or offset % ALIGN_BYTES:
                return False
            offsets.append(offset)
            offset += buf.nbytes
        out = buffers[self.new_buffer(node.results[0], node, "activation")]
        for bid, start in zip(sources, offsets):
            for buf in buffers:
                if buf.storage == bid:
                    buf.storage, buf.offset = out.storage, out.offset + start + buf.offset
        return True

    def add_if(self, node) -> None:
        """An ``If`` with a run-time condition: an ``IfStep`` whose branches are planned into their
        own blocks (their own kernel calls), each branch result written in place into the If's
        result buffer when the branch made it, else copied there after the branch's calls."""
        where = {"node": node_name(node), "op": node.op}
        if self.target_name == "cuda":
            raise CodegenError(
                "an If with a run-time condition runs as branches on CPU targets only; --target cuda cannot "
                "compile it yet",
                **where,
            )
        cond = self.plan.buffers[self.buf_of[id(node.operands[0])]]
        if cond.dtype != np.bool_ or math.prod(cond.shape) != 1:
            raise CodegenError(
                f"the condition '{cond.name}' is {cond.dtype.name}{list(cond.shape)}, not one bool", **where
            )
        branches = [node.attrs["then_branch"], node.attrs["else_branch"]]
        for k, r in enumerate(node.results):
            types = [_static_type(v, node) for v in (r, *(b.outputs[k] for b in branches))]
            if len({(math.prod(shape), dtype) for shape, dtype in types}) > 1:
                shapes = " vs ".join(f"{d.name}{list(s)}" for s, d in types[1:])
                raise CodegenError(
                    f"its branches produce values of different or non-static types for output {k} ({shapes}); "
                    "a compiled If writes each output into one buffer of one static shape",
                    **where,
                )
        step = IfStep(_node_label(node), cond.id, Block(), Block())
        step.results = [self.new_buffer(r, node, "activation") for r in node.results]
        self.steps.append(step)
        outer = self.steps
        for graph, block in zip(branches, (step.then, step.orelse)):
            first_buffer = len(self.plan.buffers)
            self.steps = block.steps
            self.plan_nodes(list(graph.nodes))
            for value, dst in zip(graph.outputs, step.results):
                self.write_result(self.buf_of[id(value)], dst, first_buffer, block)
        self.steps = outer

    def write_result(self, src: int, dst: int, first_buffer: int, block: Block) -> None:
        """Make branch value ``src`` land in result buffer ``dst``: when the branch computed it (its
        storage is one the branch made, from ``first_buffer`` on), that storage becomes ``dst``'s,
        so the kernel writes the result in place; otherwise (an outer value, a constant, a value
        already placed in another result) ``block`` copies it."""
        buffers = self.plan.buffers
        storage = buffers[src].storage
        if buffers[src].kind == "activation" and storage >= first_buffer:
            for buf in buffers[first_buffer:]:
                if buf.storage == storage:
                    buf.storage = buffers[dst].storage
        else:
            block.copies.append((src, dst))

    def add_fused(self, node, fuse: bool) -> None:
        """An ``ember.Fused`` node (made by the ``fuse`` pass): its body as one kernel call, or one
        call per body node when ``fuse`` is off (``O0``) or the body holds a node without a kernel
        (a constant, a view)."""
        body = node.attrs["body"]
        for param, value in zip(body.params, node.operands):
            self.buf_of[id(param)] = self.buf_of[id(value)]
        inner = list(body.nodes)
        made_inside = {id(r) for n in inner for r in n.results}
        # a body result that is one of its parameters (a later pass simplified the op away) is no
        # kernel output: such a body is planned node by node, which aliases it to the operand
        if (
            fuse
            and all(id(v) in made_inside for v in body.outputs)
            and all(self.kernel_member(n, inner) for n in inner)
        ):
            self.add_group(inner, list(body.outputs), list(node.results))
            return
        for n in inner:
            if not self.try_fold(n):
                self.add_group([n])
        for result, value in zip(node.results, body.outputs):
            self.buf_of[id(result)] = self.buf_of[id(value)]

    def kernel_member(self, node, group) -> bool:
        """Whether ``node`` can be computed inside the kernel of ``group``: it has a kernel (not a
        constant, a shape or a view) and no operand its lowering needs at compile time is computed
        in the group."""
        if node.op in ("Constant", *_SHAPE_FOLDS) or get_op(node.op).view:
            return False
        inside = {id(n) for n in group}
        static = self.get_lowering(node.op).static_operands
        return not any(
            k < len(node.operands) and node.operands[k] is not None and id(node.operands[k].producer) in inside
            for k in static
        )

    def try_fold(self, node) -> bool:
        """Constants, Shape/Size and view ops become buffers without kernels (no other folding:
        ``fold-constants`` in ``codegen-prepare`` has folded what is constant)."""
        if node.op == "Constant":
            self.new_buffer(node.results[0], node, "const", const=node.attrs["value"])
            return True
        if node.op in _SHAPE_FOLDS:
            shape, _ = _static_type(node.operands[0], node)
            if node.op == "Shape":
                start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
                data = np.array(shape[start:end] if end is not None else shape[start:], dtype=np.int64)
            else:
                data = np.array(math.prod(shape), dtype=np.int64)
            self.new_buffer(node.results[0], node, "const", const=data)
            return True
        lowering = self.get_lowering(node.op)
        if get_op(node.op).view and not self.runtime_operands(node, lowering):
            src = self.buf_of[id(node.operands[0])]
            sbuf = self.plan.buffers[src]
            self.new_buffer(
                node.results[0],
                node,
                sbuf.kind if sbuf.kind == "const" else "activation",
                const=sbuf.const,
                storage=sbuf.storage,
            )
            return True
        return False

    def runtime_operands(self, node, lowering) -> list[int]:
        """Indices of ``node``'s static operands that are only known at run time."""
        return [
            k
            for k in lowering.runtime
            if k < len(node.operands) and node.operands[k] is not None and self.const_of(node.operands[k]) is None
        ]

    def add_group(self, group, outputs=None, results=None) -> None:
        """One kernel call computing ``group`` (nodes in order) that writes ``outputs`` (values of
        the group; default: the last node's results) into the buffers of ``results`` (default:
        ``outputs``)."""
        check_index_width(group, self.target_name)
        outputs = list(group[-1].results) if outputs is None else outputs
        results = outputs if results is None else results
        in_bufs: list[int] = []
        in_types: list = []
        tmp_of: dict[int, tuple] = {}
        fused_ops: list[FusedOp] = []
        flops = 0
        for j, node in enumerate(group):
            lowering = self.get_lowering(node.op)
            refs, statics, op_in_types, packed = [], [], [], []
            prepack = dict(lowering.prepack)
            attrs = tuple(sorted((k, hashable(v)) for k, v in node.attrs.items()))
            for k, value in enumerate(node.operands):
                if value is None:
                    refs.append(None)
                    op_in_types.append(None)
                    continue
                op_in_types.append(_type_key(*_static_type(value, node)))
                if k in lowering.static_operands:
                    data = self.const_of(value)
                    if data is None and k in lowering.runtime:
                        data = False  # a run-time operand: a kernel input the lowering checks
                    elif data is None:
                        raise CodegenError(
                            f"{node.op} node '{node.name}': operand {k} ('{value.name}') must be a "
                            "compile-time constant for code generation (run constant folding first)"
                        )
                    if data is not False:
                        statics.append((k, hashable(data)))
                        refs.append(("static", k))
                        continue
                if id(value) in tmp_of:
                    refs.append(tmp_of[id(value)])
                else:
                    bid = self.buf_of[id(value)]
                    if k in prepack and self.plan.buffers[bid].kind == "const":
                        new_bid = self.prepacked(bid, node, attrs, prepack[k])
                        if new_bid != bid:  # the hook may decline (returns its input unchanged)
                            bid = new_bid
                            op_in_types[-1] = _type_key(self.plan.buffers[bid].shape, self.plan.buffers[bid].dtype)
                            packed.append(k)
                    if bid not in in_bufs:
                        in_bufs.append(bid)
                        in_types.append(_type_key(self.plan.buffers[bid].shape, self.plan.buffers[bid].dtype))
                    refs.append(("in", in_bufs.index(bid)))
            out_types = tuple(_type_key(*_static_type(r, node)) for r in node.results)
            flops += get_op(node.op).count_flops(
                FlopContext(
                    node.op,
                    dict(node.attrs),
                    [None if v is None else _static_type(v, node)[0] for v in node.operands],
                    [t[0] for t in out_types],
                )
            )
            fused_ops.append(
                FusedOp(node.op, attrs, tuple(refs), tuple(statics), tuple(op_in_types), out_types, tuple(packed))
            )
            for r_index, r in enumerate(node.results):
                tmp_of[id(r)] = ("tmp", j, r_index)
        out_specs = tuple((*tmp_of[id(v)][1:], *_type_key(*_static_type(v, v.producer))) for v in outputs)
        spec = KernelSpec(tuple(fused_ops), tuple(in_types), out_specs)
        out_bufs = [self.new_buffer(r, v.producer, "activation") for r, v in zip(results, outputs)]
        self.steps.append(len(self.plan.calls))
        self.plan.calls.append(KernelCall(spec, in_bufs, out_bufs, [_node_label(n) for n in group], flops))


def _kernel_nodes(nodes):
    """``nodes`` with each ``ember.Fused`` node replaced by its body's nodes and each ``If`` by its
    branches' kernel nodes."""
    for node in nodes:
        if node.op == FUSED_OP:
            yield from node.attrs["body"].nodes
        elif node.op == "If":
            for key in ("then_branch", "else_branch"):
                yield from _kernel_nodes(node.attrs[key].nodes)
        else:
            yield node


def _prepacked_impl(self, bid, node, attrs, fn) -> int:
    """A constant buffer holding ``fn`` applied to constant ``bid`` (made once per op and attrs)."""
    in_types = [None if v is None else _static_type(v, node) for v in node.operands]
    key = (bid, node.op, attrs, tuple(in_types))  # a hook may depend on the other operands' shapes
    if key not in self.packed_cache:
        src = self.plan.buffers[bid]
        extra = {"schedule": self.schedule} if getattr(fn, "uses_schedule", False) else {}
        result = fn(dict(node.attrs), in_types, src.const, **extra)  # e.g. a conv block sized by the target
        if result is src.const:
            self.packed_cache[key] = bid
            return bid
        data = np.ascontiguousarray(result).reshape(np.shape(result))  # 0-d stays 0-d
        new = len(self.plan.buffers)
        self.plan.buffers.append(Buffer(new, src.name + "_packed", tuple(data.shape), data.dtype, "const", new, data))
        self.packed_cache[key] = new
    return self.packed_cache[key]


_Planner.prepacked = _prepacked_impl


def _node_label(node) -> str:
    """The node's name; for an unnamed node (rewrites make them) ``%<first result>``, else the rule
    that made it (profiles and error messages show these)."""
    if node.name:
        return node.name
    if node.results and node.results[0].name:
        return f"%{node.results[0].name}"
    rule = getattr(node, "provenance", None)
    return f"<unnamed, made by {rule}>" if rule else "<unnamed>"


def _type_key(shape, dtype) -> tuple:
    return (tuple(int(d) for d in shape), str(np.dtype(dtype)))


def kernel_names(plan: "Plan", prefix: str) -> dict:
    """Each unique kernel spec of ``plan`` -> its function name, ``<prefix>_k<i>`` in call order (the
    names ``EMBER_PROFILE`` and ``ember bench --profile`` print)."""
    names: dict = {}
    for call in plan.calls:
        names.setdefault(call.spec, f"{prefix}_k{len(names)}")
    return names


def build_plan(
    graph,
    get_lowering,
    fuse: bool = True,
    target_name: str = "x86-64",
    max_tensor_bytes: int | None = None,
    schedule=None,
) -> Plan:
    """Plan ``graph`` using ``get_lowering(op) -> OpLowering | None`` to know what each op needs.

    Every buffer's size is computed exactly and refused (CodegenError naming the node) above
    ``max_tensor_bytes`` (default ``DEFAULT_MAX_TENSOR_BYTES``) or beyond 64 bits. ``schedule``
    (the target's ``ScheduleParams``) reaches the prepack hooks that lay weights out by tile size."""
    return _Planner(graph, get_lowering, target_name, max_tensor_bytes, schedule).run(fuse)


def count_flops(plan: Plan) -> int:
    """Approximate floating-point operations of one run: each op's ``OpDef.count_flops`` (multiply-add
    = 2 for Conv, ConvTranspose, MatMul, Gemm; one per output element otherwise); of each run-time
    If, the larger branch."""
    return run_cost(plan.program, lambda i: plan.calls[i].flops)


def count_params(plan: Plan) -> int:
    """Elements of the graph's constants (before prepacking)."""
    return sum(
        math.prod(int(d) for d in b.shape)
        for b in plan.buffers
        if b.kind == "const" and b.storage == b.id and not b.name.endswith("_packed")
    )
