"""The TVM CPU backend: plan -> unique kernels compiled in parallel -> C entry -> linked ``.so``."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

from ..aot.emit_c import emit_entry
from ..aot.header import render_header
from ..aot.link import RUNTIME_DIR, link_library, write_weights_asm
from ..backend import CompileOptions, CompileResult, register_backend
from ..branches import driver_reads
from ..errors import CodegenError
from ..memory import plan_memory
from ..plan import build_plan, count_flops, count_params, kernel_names
from ..target import Target
from .registry import get_lowering, supported_ops


def _build_one(args):
    """Worker: compile one kernel (module-level so it can run in a process pool)."""
    from .kernel import build_kernel

    spec, name, target_json, lanes, path, tuning_db = args
    start = time.time()
    try:
        used = build_kernel(spec, name, target_json, lanes, path, tuning_db)
    except Exception as exc:  # report with the kernel name; the parent raises a CodegenError
        return name, None, f"{type(exc).__name__}: {exc}", time.time() - start
    return name, used, None, time.time() - start


def _forget_inherited_fork_server() -> None:
    """In a forked child: drop the parent's fork-server handle, so the child starts its own.

    ``multiprocessing`` keeps one fork server per process in module state, and a forked child
    inherits it; the child's first pool then checks on a server that is not its child
    (``waitpid`` fails with ECHILD). Forked workers (the compiled conformance runner's, a user's
    ``multiprocessing.Pool``) that compile must get a server of their own.
    """
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    if server is None:
        return
    for name in ("_forkserver_pid", "_forkserver_address", "_forkserver_alive_fd", "_forkserver_authkey"):
        if hasattr(server, name):
            setattr(server, name, None)
    if hasattr(server, "_lock"):
        server._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_fork_server)


@contextlib.contextmanager
def _main_module_hidden():
    """Start pool workers without ``__main__``'s file and spec, so they do not import it.

    Fork-server (like spawn) workers import the parent's main module to unpickle what it defines;
    ours need nothing from it (they preload the kernel builder), and importing a user's script
    without an ``if __name__ == "__main__":`` guard would run it again in every worker, compile
    call included. ``ProcessPoolExecutor`` starts its workers in the submitting thread, inside
    this block.
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            if "__spec__" in saved:
                main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


def _worker_context():
    """Process-pool context for kernel compiles: a fork server started once, with TVM imported.

    Workers forked straight from the caller could inherit a lock held by one of its threads
    (onnxruntime's, TVM's, the caller's own) and wait on it forever; the fork server is a fresh,
    single-threaded process, and preloading the kernel builder there keeps ``import tvm`` (about
    1 s) out of every worker.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["codegen.tvm.kernel"])
    return ctx


def _kernel_task_name(task) -> str:
    """A kernel-compile task ``(spec, name, ...)`` as an error names it: the kernel and its ops."""
    return f"{task[1]} ({task[0].label})"


def map_in_workers(fn, tasks: list, jobs: int, name_of=_kernel_task_name):
    """Yield ``fn(task)`` for each task, in order, from ``jobs`` worker processes.

    A worker that dies (TVM or LLVM crashing on a kernel: a segfault, an abort) breaks the whole
    pool. The tasks not yet answered then run again one process each, so that the ones that crash
    are known, and a CodegenError names them (``name_of(task)``) instead of a bare BrokenProcessPool.
    """
    done = 0
    try:
        with cf.ProcessPoolExecutor(jobs, mp_context=_worker_context()) as pool:
            with _main_module_hidden():  # the workers start here, and must not rerun the caller's script
                outcomes = pool.map(fn, tasks, chunksize=1)
            for outcome in outcomes:
                yield outcome
                done += 1
        return
    except cf.process.BrokenProcessPool:
        pass
    crashed = []
    for task in tasks[done:]:
        try:
            with cf.ProcessPoolExecutor(1, mp_context=_worker_context()) as solo:
                with _main_module_hidden():
                    future = solo.submit(fn, task)
                outcome = future.result()
        except cf.process.BrokenProcessPool:
            crashed.append(name_of(task))
            continue
        yield outcome
    if crashed:
        raise CodegenError(
            f"the kernel compiler crashed (its process died) on {len(crashed)} kernel(s): {', '.join(crashed[:10])}. "
            "This is a bug in Ember or TVM; each name carries its kernel's ops"
        )


def compile_kernels(
    specs: dict, target: Target, build_dir: str, jobs: int, progress, tuning_db: str | None = None
) -> dict[str, str]:
    """Compile each unique spec once; returns kernel name -> schedule family used ("tuned" for a
    schedule from the MetaSchedule database ``tuning_db``)."""
    if tuning_db is not None:
        from .tuning import open_database

        open_database(tuning_db)  # a missing or broken database fails here, once, not in every worker
    tasks = [
        (spec, name, target.to_tvm(), target.schedule_params(), os.path.join(build_dir, f"{name}.o"), tuning_db)
        for spec, name in specs.items()
    ]
    jobs = jobs or min(len(tasks), os.cpu_count() or 1)
    results, errors = {}, []
    if jobs > 1 and len(tasks) > 1:
        outcomes = map_in_workers(_build_one, tasks, jobs)
        for i, (name, used, err, secs) in enumerate(outcomes):
            results[name] = used
            if err:
                errors.append(f"{name}: {err}")
            if progress:
                progress(f"[{i + 1}/{len(tasks)}] {name} ({used or 'failed'}, {secs:.2f}s)")
    else:
        for i, task in enumerate(tasks):
            name, used, err, secs = _build_one(task)
            results[name] = used
            if err:
                errors.append(f"{name}: {err}")
            if progress:
                progress(f"[{i + 1}/{len(tasks)}] {name} ({used or 'failed'}, {secs:.2f}s)")
    if errors:
        raise CodegenError("kernel compilation failed:\n  " + "\n  ".join(errors[:10]))
    return results


def layout_weights(plan) -> tuple[bytes, dict[int, int]]:
    """Concatenate every constant storage (64-byte aligned); returns the blob and storage -> offset."""
    offsets, chunks, size = {}, [], 0
    used = {plan.buffers[b].storage for call in plan.calls for b in call.inputs} | {
        plan.buffers[b].storage for b in plan.outputs
    }
    used |= {plan.buffers[b].storage for b in driver_reads(plan.program)}  # If conditions, branch result copies
    for buf in plan.buffers:
        if buf.kind != "const" or buf.storage in offsets or buf.storage != buf.id or buf.id not in used:
            continue
        data = np.ascontiguousarray(buf.const).tobytes()
        pad = (-size) % 64
        chunks.append(b"\0" * pad)
        size += pad
        offsets[buf.storage] = size
        chunks.append(data)
        size += len(data)
    return b"".join(chunks), offsets


@register_backend("aarch64")
@register_backend("x86-64")
class TvmCpuBackend:
    """x86-64 and aarch64 (cross-compiled with aarch64-linux-gnu-gcc) through TVM's LLVM codegen."""

    name = "tvm-cpu"

    def supported_ops(self) -> set[str]:
        return supported_ops()

    def compile(self, graph, output_path: str, target: Target, options: CompileOptions) -> CompileResult:
        start = time.time()
        say = options.progress or (lambda msg: None)
        plan = build_plan(
            graph,
            get_lowering,
            fuse=options.opt_level > 0,
            target_name=target.kind,
            max_tensor_bytes=options.max_tensor_bytes,
            schedule=target.schedule_params(),
        )
        memory = plan_memory(plan)
        names = kernel_names(plan, options.prefix)
        say(f"{len(plan.calls)} kernel calls, {len(names)} unique kernels, arena {memory.arena_bytes} bytes")
        out_dir = os.path.dirname(os.path.abspath(output_path))
        os.makedirs(out_dir, exist_ok=True)
        build_dir = tempfile.mkdtemp(prefix="ember_build_")
        try:
            schedules = compile_kernels(names, target, build_dir, options.jobs, say, options.tuning_db)
            blob, const_offsets = layout_weights(plan)
            external = options.weights == "external"
            header_path = os.path.join(out_dir, f"{options.prefix}.h" if options.prefix != "ember_model" else "model.h")
            header = render_header(options.prefix, plan.name, len(plan.inputs), len(plan.outputs), memory.arena_bytes)
            for path in (header_path, os.path.join(build_dir, f"{options.prefix}.h")):
                with open(path, "w") as f:
                    f.write(header)
            flops, params = count_flops(plan), count_params(plan)
            entry = emit_entry(
                plan,
                memory,
                const_offsets,
                [names[c.spec] for c in plan.calls],
                options.prefix,
                len(blob),
                external,
                params,
                flops,
            )
            entry_path = os.path.join(build_dir, "entry.c")
            with open(entry_path, "w") as f:
                f.write(entry)
            sources = [entry_path, os.path.join(RUNTIME_DIR, "ember_runtime.c")]
            weights_file = None
            blob_path = os.path.join(build_dir, "weights.bin")
            with open(blob_path, "wb") as f:
                f.write(blob)
            if external:
                weights_file = os.path.splitext(os.path.abspath(output_path))[0] + ".weights"
                shutil.copyfile(blob_path, weights_file)
            else:
                asm = os.path.join(build_dir, "weights.S")
                write_weights_asm(asm, blob_path, f"{options.prefix}_weights_blob")
                sources.append(asm)
            objects = [os.path.join(build_dir, f"{n}.o") for n in names.values()]
            say("linking")
            link_library(output_path, build_dir, sources, objects, options.prefix, target.c_compiler())
        finally:
            if options.keep_build_dir:
                say(f"build files kept in {build_dir}")
            else:
                shutil.rmtree(build_dir, ignore_errors=True)
        families: dict[str, int] = {}
        for fam in schedules.values():
            families[fam] = families.get(fam, 0) + 1
        return CompileResult(
            output_path,
            header_path,
            weights_file,
            memory.arena_bytes,
            len(blob),
            len(plan.calls),
            len(names),
            time.time() - start,
            {"naive_activation_bytes": memory.naive_bytes, "schedules": families, "flops": flops, "params": params},
        )
