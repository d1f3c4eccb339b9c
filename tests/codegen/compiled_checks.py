"""Checks shared by the codegen tests: a compiled library against the interpreter on the same model."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sanitizer_works(tmp_path, flag: str) -> bool:
    """Whether gcc here builds and runs an empty program with ``-fsanitize=<flag>`` (address, thread):
    the C runtime's driver tests use the sanitizer where it works and run plain where it does not."""
    import subprocess

    probe = tmp_path / f"probe_{flag}.c"
    probe.write_text("int main(void) { return 0; }\n")
    exe = tmp_path / f"probe_{flag}"
    built = subprocess.run(["gcc", f"-fsanitize={flag}", str(probe), "-o", str(exe)], capture_output=True)
    return built.returncode == 0 and subprocess.run([str(exe)]).returncode == 0


def conformance_runner(module_name="onnx_conformance_compiled"):
    """A fresh copy of scripts/onnx_conformance_compiled.py as a module (scripts/ is not a package)."""
    path = os.path.join(ROOT, "scripts", "onnx_conformance_compiled.py")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_and_reference(onnx_model):
    """The model through ``prepare(compile=True)`` (a shared library) and through the interpreter."""
    return EmberBackend.prepare(onnx_model, compile=True), EmberBackend.prepare(onnx_model)


def check(rep, ref, feeds, tol=1e-6):
    """Both runs give the same outputs (count, shapes, values within ``tol``); returns the compiled ones."""
    got, want = rep.run(feeds), ref.run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    return got


def refused(rep, feeds, words):
    """The compiled run fails with a load/run error whose message holds every one of ``words``."""
    with pytest.raises(RuntimeLoadError) as info:
        rep.run(feeds)
    for word in words:
        assert word in str(info.value)


def node_model(op, inputs, outputs, opset=21, domain="", initializers=(), **attrs):
    """A one-node node_model: ``inputs`` / ``outputs`` are (name, elem type, shape); "" skips an operand."""
    node = helper.make_node(
        op, [i[0] if i else "" for i in inputs], [name for name, _, _ in outputs], domain=domain, **attrs
    )
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(*i) for i in inputs if i],
        [helper.make_tensor_value_info(*o) for o in outputs],
        initializer=list(initializers),
    )
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def check_against_interpreter(onnx_model, feeds, rtol=1e-5, atol=1e-5, target=None):
    """The compiled library's results (built for ``target``, else the host) equal the interpreter's."""
    options = {"target": target} if target else {}
    rep, ref = EmberBackend.prepare(onnx_model, compile=True, **options), EmberBackend.prepare(onnx_model)
    got, want = rep.run(feeds), ref.run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)
    return rep


def param_model(op, inputs, out_shape, out_type=TensorProto.FLOAT, **attrs):
    """A one-node param_model: ``inputs`` are (name, elem type, shape); the output 'y' is declared."""
    node = helper.make_node(op, [name for name, _, _ in inputs], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info("y", out_type, out_shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def only_kernel(onnx_model, target_name: str = "x86_64"):
    """(the one kernel's spec, the target) of ``onnx_model`` prepared with O2 and planned for
    ``target_name``; fails unless the plan makes exactly one kernel call."""
    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    target = parse_target(target_name)
    graph = prepare_for_codegen(import_model(onnx_model), "O2")
    plan = build_plan(graph, get_lowering, target_name=target.kind, schedule=target.schedule_params())
    assert len(plan.calls) == 1, [call.spec.label for call in plan.calls]
    return plan.calls[0].spec, target


def conv_clip_model(x_shape, w, bias, clip, **attrs):
    """Conv (weights and bias as initializers), then Clip(0, 6) when ``clip``: the fused epilogue."""
    rng_inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if clip else "y"], **attrs)]
    if clip:
        rng_inits += [numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi")]
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=rng_inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def scheduled_kernel(model, params):
    """The one kernel of ``model`` lowered and scheduled for ``params``: (scheduled module, the
    schedule family used, the kernel's TE outputs)."""
    import tvm
    from tvm import te

    from codegen.plan import build_plan
    from codegen.tvm.kernel import anchor_kind, spec_to_te
    from codegen.tvm.registry import get_lowering
    from codegen.tvm.schedule import apply_schedule
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
    placeholders, outputs = spec_to_te(call.spec, [], params)
    mod = tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)})
    scheduled, used = apply_schedule(mod, anchor_kind(call.spec), params)
    return scheduled, used, outputs


def built_kernel(model, target: str):
    """The one kernel of ``model`` built for ``target`` (a ``--target`` text): (the built TVM module,
    the schedule family used); its ``inspect_source("asm")`` shows the instructions."""
    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    parsed = parse_target(target)
    params = parsed.schedule_params()
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
    return build_kernel_module(call.spec, "k", parsed.to_tvm(), params)
