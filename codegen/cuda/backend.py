"""The CUDA backend: plan -> CUDA C per unique kernel -> fatbins (nvcc) -> C host driver -> ``.so``.

Same plan, fusion, arena and lowerings as the CPU backend; GPU schedules from DLight. The library
needs only libc to load: the driver API comes from ``libcuda.so.1`` at instance creation.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

from ..aot.header import render_header
from ..aot.link import RUNTIME_DIR, link_library, write_weights_asm
from ..backend import CompileOptions, CompileResult, register_backend
from ..errors import CodegenError
from ..memory import plan_memory
from ..plan import build_plan, count_flops, count_params, kernel_names
from ..target import Target
from ..tvm.backend import layout_weights, map_in_workers
from ..tvm.registry import get_lowering, supported_ops
from .emit_host import ERR_CUDA, ERR_NO_DEVICE, emit_host
from .nvcc import compile_modules, find_nvcc, launch_problems

RESOURCES_FILE = "cuda_resources.json"  # beside the library: ptxas's per-kernel report


def _generate_one(args):
    """Worker: one spec to CUDA C (module-level so a process pool can run it)."""
    from .kernel import build_cuda_kernel

    spec, name, target_json, tensor_cores = args
    try:
        return build_cuda_kernel(spec, name, target_json, tensor_cores), None
    except Exception as exc:
        return None, f"{name}: {type(exc).__name__}: {exc}"


def generate_kernels(names: dict, target: Target, jobs: int, say) -> list:
    """CUDA C of each unique spec (in ``names`` order), in parallel processes when there are several."""
    tasks = [(spec, name, target.to_tvm(), target.cuda_tensor_cores) for spec, name in names.items()]
    jobs = jobs or min(len(tasks), os.cpu_count() or 1)
    if jobs > 1 and len(tasks) > 1:
        outcomes = list(map_in_workers(_generate_one, tasks, jobs))
    else:
        outcomes = [_generate_one(t) for t in tasks]
    errors = [err for _, err in outcomes if err]
    if errors:
        raise CodegenError("CUDA kernel generation failed:\n  " + "\n  ".join(errors[:10]))
    say(f"{len(tasks)} kernels generated as CUDA C")
    return [kernel for kernel, _ in outcomes]


def compile_fatbins(kernels: list, build_dir: str, arch: str, jobs: int, say) -> tuple[list, dict]:
    """The kernels' fatbins (``nvcc.compile_modules``): the modules, and ptxas's report per kernel name."""
    modules, report = compile_modules(kernels, build_dir, arch, jobs)
    problems = launch_problems(kernels, report, arch)
    if problems:
        raise CodegenError(f"{len(problems)} CUDA launches exceed what {arch} allows:\n  " + "\n  ".join(problems))
    say(f"{len(kernels)} kernels in {len(modules)} fatbins for {arch} (cubin + PTX)")
    return modules, report


@register_backend("cuda")
class CudaBackend:
    """NVIDIA GPUs through TVM's CUDA codegen, nvcc offline, and a dlopen-ed driver API."""

    name = "tvm-cuda"

    def supported_ops(self) -> set[str]:
        return supported_ops()

    def compile(self, graph, output_path: str, target: Target, options: CompileOptions) -> CompileResult:
        start = time.time()
        say = options.progress or (lambda msg: None)
        if options.weights != "embedded":
            raise CodegenError("--target cuda embeds its weights (external weights are CPU-only for now)")
        find_nvcc()  # fail before the slow part
        plan = build_plan(
            graph,
            get_lowering,
            fuse=options.opt_level > 0,
            target_name="cuda",
            max_tensor_bytes=options.max_tensor_bytes,
        )
        memory = plan_memory(plan)
        names = kernel_names(plan, options.prefix)
        say(f"{len(plan.calls)} kernel calls, {len(names)} unique kernels, arena {memory.arena_bytes} bytes")
        kernels = generate_kernels(names, target, options.jobs, say)
        index = {spec: k for k, spec in enumerate(names)}
        out_dir = os.path.dirname(os.path.abspath(output_path))
        os.makedirs(out_dir, exist_ok=True)
        build_dir = tempfile.mkdtemp(prefix="ember_cuda_")
        try:
            modules, resources = compile_fatbins(kernels, build_dir, target.cuda_arch or "sm_80", options.jobs, say)
            module_of = [0] * len(kernels)
            for m, module in enumerate(modules):
                for k in module.kernels:
                    module_of[k] = m
            blob, const_offsets = layout_weights(plan)
            flops, params = count_flops(plan), count_params(plan)
            header_path = os.path.join(out_dir, f"{options.prefix}.h" if options.prefix != "ember_model" else "model.h")
            header = cuda_header(options.prefix, plan, memory.arena_bytes)
            for path in (header_path, os.path.join(build_dir, f"{options.prefix}.h")):
                with open(path, "w") as f:
                    f.write(header)
            scratch = max([k.scratch_bytes for k in kernels] + [0])
            host = emit_host(
                plan,
                memory,
                const_offsets,
                kernels,
                module_of,
                [index[c.spec] for c in plan.calls],
                options.prefix,
                len(blob),
                scratch,
                params,
                flops,
            )
            host_path = os.path.join(build_dir, "host.c")
            with open(host_path, "w") as f:
                f.write(host)
            blob_path = os.path.join(build_dir, "weights.bin")
            with open(blob_path, "wb") as f:
                f.write(blob)
            sources = [host_path, os.path.join(RUNTIME_DIR, "ember_runtime.c")]
            for symbol, path in [(f"{options.prefix}_weights_blob", blob_path)] + [
                (f"{options.prefix}_fatbin_{m}", module.path) for m, module in enumerate(modules)
            ]:
                asm = os.path.join(build_dir, f"{symbol}.S")
                write_weights_asm(asm, path, symbol)
                sources.append(asm)
            say("linking")
            link_library(output_path, build_dir, sources, [], options.prefix, target.c_compiler())
        finally:
            if options.keep_build_dir:
                say(f"build files kept in {build_dir}")
            else:
                shutil.rmtree(build_dir, ignore_errors=True)
        report = {name: [r.__dict__ for r in rows] for name, rows in sorted(resources.items())}
        with open(os.path.join(out_dir, os.path.basename(output_path) + "." + RESOURCES_FILE), "w") as f:
            json.dump({"arch": target.cuda_arch, "kernels": report}, f, indent=1)
        schedules: dict[str, int] = {}
        for kernel in kernels:
            schedules[kernel.schedule] = schedules.get(kernel.schedule, 0) + 1
        return CompileResult(
            output_path,
            header_path,
            None,
            memory.arena_bytes + scratch,
            len(blob),
            len(plan.calls),
            len(names),
            time.time() - start,
            {
                "naive_activation_bytes": memory.naive_bytes,
                "schedules": schedules,
                "flops": flops,
                "params": params,
                "cuda_arch": target.cuda_arch,
                "cuda_resources": report,
                "cuda_kernel_labels": {name: spec.label for spec, name in names.items()},
                "cuda_modules": len(modules),
                "cuda_launches": {
                    kernel.name: [
                        {"function": x.function, "grid": x.grid, "block": x.block, "shared": x.shared}
                        for x in kernel.launches
                    ]
                    for kernel in kernels
                },
                "dropped_guards": sum(k.dropped_guards for k in kernels),
            },
        )


_CUDA_DECLS = """
/* --- CUDA libraries only --- */
#define {PREFIX}_ERR_NO_DEVICE {no_device}     /* no CUDA driver (libcuda.so.1) or no usable GPU */
#define {PREFIX}_ERR_CUDA {cuda}          /* a CUDA driver call failed (message says which) */
/* Creates an instance on GPU `device`, launching on `stream` (a CUstream; NULL: its own stream).
 * {prefix}_create uses device $EMBER_CUDA_DEVICE (default 0). weights_path is ignored. */
int {prefix}_create_cuda({prefix}_model** out, int device, void* stream, const char* weights_path);
/* Launch on another stream from now on (NULL: the instance's own). */
int {prefix}_set_stream({prefix}_model* model, void* stream);
/* Like {prefix}_run, with device pointers (CUdeviceptr) for inputs and outputs; returns once the
 * copies and kernels are queued on the stream (synchronise the stream before reading outputs). */
int {prefix}_run_device({prefix}_model* model, const void* const* inputs, const size_t* input_bytes,
                        int num_inputs, void* const* outputs, const size_t* output_bytes, int num_outputs);
/* GPU time of the kernels of the last {prefix}_run, measured with CUDA events. */
int {prefix}_gpu_time_ms({prefix}_model* model, float* ms);
"""


def cuda_header(prefix: str, plan, arena_bytes: int) -> str:
    """The CPU libraries' header plus the CUDA-only declarations."""
    header = render_header(prefix, plan.name, len(plan.inputs), len(plan.outputs), arena_bytes)
    extra = _CUDA_DECLS.format(prefix=prefix, PREFIX=prefix.upper(), no_device=ERR_NO_DEVICE, cuda=ERR_CUDA)
    closing = "\n#ifdef __cplusplus\n}\n#endif\n#endif"
    at = header.rindex(closing)
    return header[:at] + extra + header[at:]
