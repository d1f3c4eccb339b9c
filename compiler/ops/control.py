"""Control-flow ops (If, Loop, Scan, SequenceMap): nested graphs run by the interpreter.

Bodies are ``Graph`` attributes whose nodes may read values of the enclosing
graph directly.  Their reference kernels call ``ctx.interpreter.run_graph``.
"""

from __future__ import annotations

import numpy as np

from ..ir.types import SequenceType, TensorType, Type
from .declare import Family
from .registry import Trait


def _merge(a: Type | None, b: Type | None) -> Type | None:
    """The most precise type that covers both branch types."""
    if a is None or b is None:
        return a or b
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
            return TensorType(a.dtype, None)
        return TensorType(a.dtype, tuple(x if x == y else None for x, y in zip(a.shape, b.shape)))
    return a


def _infer_if(ctx):
    then_g, else_g = ctx.attrs["then_branch"], ctx.attrs["else_branch"]
    return [_merge(t.type, e.type) for t, e in zip(then_g.outputs, else_g.outputs)]


def _with_leading(t: Type | None, dim) -> Type | None:
    if isinstance(t, TensorType) and t.shape is not None:
        return TensorType(t.dtype, (dim,) + t.shape)
    return t if not isinstance(t, TensorType) else TensorType(t.dtype, None)


def _infer_loop(ctx):
    body = ctx.attrs["body"]
    n_carried = len(ctx.input_types) - 2
    outs = [v.type for v in body.outputs[1:]]
    trip = ctx.const_inputs[0] if ctx.const_inputs and ctx.const_inputs[0] is not None else None
    trip_dim = int(trip) if trip is not None and ctx.const_inputs[1] is None else None
    carried = [_merge(o, i) if isinstance(o, TensorType) else o for o, i in zip(outs[:n_carried], ctx.input_types[2:])]
    return carried + [_with_leading(t, trip_dim) for t in outs[n_carried:]]


def loop_contract(ctx) -> list[str]:
    """Each carried value comes into the body with the element type of its initial value."""
    body = ctx.attrs.get("body")
    if body is None:
        return []
    found = []
    for k, (initial, param) in enumerate(zip(ctx.input_types[2:], body.params[2:])):
        if isinstance(initial, TensorType) and isinstance(param.type, TensorType) and initial.dtype != param.type.dtype:
            found.append(
                f"carried value {k} starts as {initial.dtype.name.lower()} but the body takes it as "
                f"{param.type.dtype.name.lower()} ('{param.name}')"
            )
    return found


def _infer_scan(ctx):
    body = ctx.attrs["body"]
    n_scan = ctx.attrs["num_scan_inputs"]
    n_state = len(ctx.input_types) - n_scan
    scan_in = ctx.input_types[n_state:]
    in_axes = ctx.attrs.get("scan_input_axes") or [0] * n_scan
    length = None
    if scan_in and isinstance(scan_in[0], TensorType) and scan_in[0].shape is not None:
        length = scan_in[0].shape[in_axes[0] % len(scan_in[0].shape)]
    outs = [v.type for v in body.outputs]
    n_scan_out = len(outs) - n_state
    out_axes = ctx.attrs.get("scan_output_axes") or [0] * n_scan_out
    result = list(outs[:n_state])
    for t, axis in zip(outs[n_state:], out_axes):
        if isinstance(t, TensorType) and t.shape is not None:
            axis = axis % (len(t.shape) + 1)
            result.append(TensorType(t.dtype, t.shape[:axis] + (length,) + t.shape[axis:]))
        else:
            result.append(t)
    return result


def _infer_sequence_map(ctx):
    body = ctx.attrs["body"]
    return [SequenceType(v.type) for v in body.outputs]


def _run_if(inputs, attrs, ctx):
    branch = attrs["then_branch"] if bool(np.asarray(inputs[0]).reshape(-1)[0]) else attrs["else_branch"]
    return ctx.interpreter.run_graph(branch, [])


def _run_loop(inputs, attrs, ctx):
    body = attrs["body"]
    trip, cond = inputs[0], inputs[1]
    carried = list(inputs[2:])
    max_trip = None if trip is None else int(np.asarray(trip).reshape(-1)[0])
    keep_going = True if cond is None else bool(np.asarray(cond).reshape(-1)[0])
    scans: list[list] | None = None
    i = 0
    check = getattr(ctx.interpreter, "check_loop_iterations", None)  # the interpreter's iteration cap
    if check is not None and max_trip is not None and cond is None:
        check(ctx.node, max_trip)  # no early exit: refuse at once
    while keep_going and (max_trip is None or i < max_trip):
        if check is not None:
            check(ctx.node, i + 1)
        outs = ctx.interpreter.run_graph(body, [np.array(i, dtype=np.int64), np.array(keep_going)] + carried)
        keep_going = bool(np.asarray(outs[0]).reshape(-1)[0]) if cond is not None else True
        carried = list(outs[1 : 1 + len(carried)])
        step_scans = outs[1 + len(carried) :]
        if scans is None:
            scans = [[] for _ in step_scans]
        for acc, v in zip(scans, step_scans):
            acc.append(v)
        i += 1
    n_scan_out = len(body.outputs) - 1 - len(carried)
    results = carried
    for k in range(n_scan_out):
        if scans and scans[k]:
            results.append(np.stack(scans[k]))
        else:
            t = body.outputs[1 + len(carried) + k].type
            shape = tuple(d if isinstance(d, int) else 0 for d in (t.shape or ()))
            results.append(np.zeros((0,) + shape, dtype=t.dtype.np))
    return results


def _run_scan(inputs, attrs, ctx):
    body = attrs["body"]
    n_scan = attrs["num_scan_inputs"]
    n_state = len(inputs) - n_scan
    state, scan_in = list(inputs[:n_state]), inputs[n_state:]
    in_axes = attrs.get("scan_input_axes") or [0] * n_scan
    in_dirs = attrs.get("scan_input_directions") or [0] * n_scan
    n_out = len(body.outputs) - n_state
    out_axes = attrs.get("scan_output_axes") or [0] * n_out
    out_dirs = attrs.get("scan_output_directions") or [0] * n_out
    length = scan_in[0].shape[in_axes[0] % scan_in[0].ndim]
    collected: list[list] = [[] for _ in range(n_out)]
    for t in range(length):
        slices = []
        for x, axis, direction in zip(scan_in, in_axes, in_dirs):
            idx = length - 1 - t if direction else t
            slices.append(np.take(x, idx, axis=axis % x.ndim))
        outs = ctx.interpreter.run_graph(body, state + slices)
        state = list(outs[:n_state])
        for acc, v in zip(collected, outs[n_state:]):
            acc.append(v)
    results = state
    for acc, axis, direction in zip(collected, out_axes, out_dirs):
        if direction:
            acc = acc[::-1]
        stacked = np.stack(acc)
        axis = axis % stacked.ndim
        results.append(np.moveaxis(stacked, 0, axis))
    return results


def _run_sequence_map(inputs, attrs, ctx):
    body = attrs["body"]
    seq = inputs[0]
    outs: list[list] = [[] for _ in body.outputs]
    for i in range(len(seq)):
        args = [seq[i]] + [x[i] if isinstance(x, list) else x for x in inputs[1:]]
        for acc, v in zip(outs, ctx.interpreter.run_graph(body, args)):
            acc.append(v)
    return outs


FAMILY = Family("control")
onnx_op = FAMILY.onnx_op

CONTROL = {Trait.CONTROL_FLOW}

onnx_op("If", traits=CONTROL, infer=_infer_if, kernel=_run_if)
onnx_op("Loop", traits=CONTROL, infer=_infer_loop, kernel=_run_loop, contract=loop_contract)
onnx_op("Scan", traits=CONTROL, infer=_infer_scan, kernel=_run_scan)
onnx_op("SequenceMap", traits=CONTROL | {Trait.SEQUENCE}, infer=_infer_sequence_map, kernel=_run_sequence_map)
