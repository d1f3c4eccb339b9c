"""Run CUDA libraries on a GPU: outputs against onnxruntime-CPU, latency against PyTorch (cuDNN/cuBLAS).

Two steps, so that the slow part (compiling) runs on any machine and the GPU machine only runs:

    # anywhere (no GPU needed): compile into DIR; NAME.npz holds the inputs and onnxruntime-CPU's outputs
    PYTHONPATH=$PWD python3 scripts/cuda_gpu_check.py compile --arch sm_90 --dir DIR --sign-weights --xz \
        --models resnet50 mobilenet_v2 bert_base light_squeezenet ...
    # on the GPU machine (needs numpy, onnx, ml_dtypes; PyTorch for the anchor): a Markdown table
    PYTHONPATH=$PWD python3 scripts/cuda_gpu_check.py run --dir DIR --runs 30 --profile resnet50 bert_base

Model names as in scripts/cuda_resource_table.py (benchmark models at benchmark size, light zoo
models as ``light_<stem>``). The comparison uses benchmarks/light_zoo.py's relative difference and
fp32 tolerance. ``--sign-weights`` and ``--xz`` make the libraries small enough to carry to a
machine that cannot download anything (BERT-base: 341 MB -> 18 MB).

The anchor is the same network in PyTorch on the GPU, fp32 with TF32 off (Ember computes in fp32),
for the models torchvision has (and BERT as ``nn.TransformerEncoder``). PyTorch calls cuDNN and
cuBLAS, as onnxruntime's CUDA execution provider does; onnxruntime-gpu itself (255 MB, built for
CUDA 12) cannot be carried to the GPU machine used here. With PyTorch present, the check also runs
each library through ``run_device`` on PyTorch tensors and lists the heaviest kernels of the
``--profile`` models from PyTorch's profiler (CUPTI sees the library's driver-API launches).
"""

from __future__ import annotations

import argparse
import lzma
import os
import statistics
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

# an fp16 library (``--passes convert-float16 --suffix _fp16``) against the fp32 reference: largest
# difference relative to the output's largest magnitude, about 20 fp16 roundings (2^-11 each)
FP16_TOLERANCE = 1e-2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def sign_weights(model: onnx.ModelProto, min_size: int = 4096) -> onnx.ModelProto:
    """``model`` with each float initializer of ``min_size`` or more elements replaced by random
    signs times the original's standard deviation (deterministic per initializer).

    A CUDA library embeds its weights; sign weights compress about 19x with xz, so that a BERT-base
    library (340 MB of fp32 weights) travels to a GPU machine inside a small transfer. Activations
    keep their scale, and the outputs are still compared with onnxruntime on the same weights.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for index, init in enumerate(out.graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype != np.float32 or array.size < min_size:
            continue
        signs = np.random.default_rng(index).integers(0, 2, array.shape) * 2 - 1
        init.CopyFrom(numpy_helper.from_array((signs * array.std()).astype(np.float32), init.name))
    return out


def _is_fp16(name: str) -> bool:
    """A library built after ``convert-float16`` (``--suffix _fp16``, or ``_fp16_simt`` with
    ``--target-options tensor_cores=0`` for the same model on SIMT cores)."""
    return "_fp16" in name


def compile_all(args) -> int:
    import onnxruntime as ort
    from cuda_resource_table import load_model

    from compiler.driver import DEFAULT_PIPELINE, compile_model
    from compiler.testing.onnx_feeds import random_feeds
    from frontends.onnx import import_model

    os.makedirs(args.dir, exist_ok=True)
    pipeline = f"{DEFAULT_PIPELINE},{args.passes}" if args.passes else DEFAULT_PIPELINE
    for model_name in args.models:
        name = model_name + args.suffix
        model = load_model(model_name)
        if args.sign_weights:
            model = sign_weights(model)
        feeds = random_feeds(model)
        cpu = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = dict(zip([o.name for o in cpu.get_outputs()], cpu.run(None, feeds)))
        np.savez(
            os.path.join(args.dir, f"{name}.npz"),
            **{f"in:{k}": v for k, v in feeds.items()},
            **{f"out:{k}": v for k, v in expected.items()},
        )
        start = time.time()
        library = os.path.join(args.dir, f"{name}.so")
        target = f"cuda:{args.arch}" + (f",{args.target_options}" if args.target_options else "")
        compile_model(import_model(model), library, target, pipeline=pipeline, prefix=name, jobs=args.jobs)
        if args.xz:
            with open(library, "rb") as src, lzma.open(library + ".xz", "wb", preset=1) as dst:
                dst.write(src.read())
            os.remove(library)
        print(f"{name}: compiled for {args.arch} in {time.time() - start:.1f} s", file=sys.stderr, flush=True)
    return 0


def _median_ms(fn, runs: int, *fn_args) -> float:
    fn(*fn_args)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(*fn_args)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def _reference(directory: str, name: str):
    """(feeds, expected outputs): from NAME.npz (written by ``compile``), else onnxruntime-CPU here."""
    npz = os.path.join(directory, f"{name}.npz")
    if os.path.exists(npz):
        data = np.load(npz)
        feeds = {k[3:]: data[k] for k in data.files if k.startswith("in:")}
        return feeds, {k[4:]: data[k] for k in data.files if k.startswith("out:")}
    import onnxruntime as ort

    from compiler.testing.onnx_feeds import random_feeds

    model = onnx.load(os.path.join(directory, f"{name}.onnx"))
    feeds = random_feeds(model)
    cpu = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return feeds, dict(zip([o.name for o in cpu.get_outputs()], cpu.run(None, feeds)))


def _library(directory: str, name: str, scratch: str) -> str:
    path = os.path.join(directory, f"{name}.so")
    if os.path.exists(path):
        return path
    out = os.path.join(scratch, f"{name}.so")
    with lzma.open(path + ".xz", "rb") as src, open(out, "wb") as dst:
        dst.write(src.read())
    return out


def torch_anchor(name: str):
    """The same network in PyTorch (cuDNN and cuBLAS, the libraries onnxruntime's CUDA execution
    provider calls), with random weights, or None: only timing is compared."""
    import torch
    import torchvision

    nets = {
        "resnet50": lambda: torchvision.models.resnet50(),
        "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(),
        "light_densenet121": lambda: torchvision.models.densenet121(),
        "light_vgg19": lambda: torchvision.models.vgg19(),
        "bert_base": lambda: torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(768, 12, 3072, dropout=0.0, activation="gelu", batch_first=True),
            12,
            enable_nested_tensor=False,
        ),
    }
    return nets[name]().eval().cuda() if name in nets else None


def _torch_ms(net, x_host, runs: int) -> tuple[float, float]:
    """(median GPU ms of the forward pass from CUDA events, median wall ms of copy in + forward +
    copy out), as Ember's run is timed."""
    import torch

    walls, gpus = [], []
    with torch.inference_mode():
        for i in range(runs + 3):
            start = time.perf_counter()
            x = x_host.cuda(non_blocking=False)
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            y = net(x)
            end.record()
            y.cpu()
            if i >= 3:
                walls.append(1e3 * (time.perf_counter() - start))
                gpus.append(begin.elapsed_time(end))
    return statistics.median(gpus), statistics.median(walls)


def _torch_graph_ms(net, x_host, runs: int) -> float | None:
    """Median GPU ms of the forward pass replayed as a CUDA graph (no launch overhead: the best
    PyTorch does at batch 1), or None where the network cannot be captured."""
    import torch

    try:
        x = x_host.cuda()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(3):
                net(x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            net(x)
        times = []
        for _ in range(runs + 3):
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        return statistics.median(times[3:])
    except Exception as exc:  # noqa: BLE001 - an anchor that cannot be captured is left out
        print(f"(PyTorch CUDA graph capture failed: {type(exc).__name__}: {str(exc)[:120]})", file=sys.stderr)
        return None


def _device_pointer_check(lib, feeds, host_out) -> float:
    """Largest difference between ``run_device`` on PyTorch CUDA tensors and the host ``run``."""
    import torch

    ins = [torch.from_numpy(np.ascontiguousarray(feeds[i.name])).cuda() for i in lib.inputs]
    outs = [torch.empty(o.shape, dtype=getattr(torch, str(np.dtype(o.dtype))), device="cuda") for o in lib.outputs]
    torch.cuda.synchronize()
    lib.run_device(ins, outs)
    torch.cuda.synchronize()
    return max(float(np.max(np.abs(o.cpu().numpy() - host_out[i.name]))) for o, i in zip(outs, lib.outputs))


def _kernel_profile(lib, feeds, top: int) -> list[str]:
    """The library's kernels by GPU time, recorded by PyTorch's profiler (CUPTI sees every kernel in
    the process, the driver-API launches of an Ember library too)."""
    from torch.profiler import ProfilerActivity, profile

    lib.run(feeds)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            lib.run(feeds)
    rows = sorted(prof.key_averages(), key=lambda e: -e.device_time_total)
    rows = [e for e in rows if e.device_time_total > 0 and "Memcpy" not in e.key]
    total = sum(e.device_time_total for e in rows) or 1
    lines = []
    for e in rows[:top]:
        share = 100 * e.device_time_total / total
        lines.append(f"    {e.device_time_total / 5e3:8.3f} ms {share:5.1f}%  x{e.count // 5:<3d} {e.key[:90]}")
    return lines


def run_all(args) -> int:
    import tempfile

    from light_zoo import FP32_TOLERANCE, relative_diff

    from compiler.runtime import load

    try:
        if args.no_torch:
            raise ImportError
        import torch

        has_torch = torch.cuda.is_available()
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # fp32, as Ember
        torch.backends.cudnn.benchmark = True
    except ImportError:
        has_torch = False
    names = sorted({f.split(".so")[0] for f in os.listdir(args.dir) if ".so" in f and not f.endswith(".json")})
    if args.models:
        names = [n for n in names if n in args.models]
    print(
        "| model | worst rel. diff vs ORT-CPU | ok | run_device diff | Ember GPU ms | Ember kernel by kernel GPU ms "
        "| PyTorch GPU ms | ratio | PyTorch graph GPU ms | ratio | Ember wall ms | PyTorch wall ms |\n"
        + "|---" * 12
        + "|",
        flush=True,
    )
    failures, profiles, opened = 0, [], []
    with tempfile.TemporaryDirectory(prefix="ember_cuda_check_") as scratch:
        for name in names:
            feeds, expected = _reference(args.dir, name)
            try:
                lib = load(_library(args.dir, name, scratch))
                got = lib.run(feeds)
            except Exception as exc:
                failures += 1
                print(f"| {name} | error: {str(exc)[:160]} | no |" + " |" * 9, flush=True)
                continue
            worst = max(relative_diff(got[k], v) for k, v in expected.items())
            ok = worst <= (FP16_TOLERANCE if _is_fp16(name) else FP32_TOLERANCE)
            failures += not ok
            wall = _median_ms(lib.run, args.runs, feeds)
            gpu = statistics.median([(lib.run(feeds), lib.gpu_time_ms())[1] for _ in range(args.runs)])
            one_by_one = ""
            if args.graph_off_too:  # a second instance launching kernel by kernel (read at create)
                os.environ["EMBER_CUDA_GRAPHS"] = "0"
                try:
                    plain = load(lib.path)
                finally:
                    del os.environ["EMBER_CUDA_GRAPHS"]
                plain_ms = [(plain.run(feeds), plain.gpu_time_ms())[1] for _ in range(args.runs)]
                one_by_one = f"{statistics.median(plain_ms):.3f}"
                plain.close()
            cells = dict(device="", torch="", ratio="", graph="", graph_ratio="", wall=f"{wall:.3f}", torch_wall="")
            if has_torch:
                cells["device"] = f"{_device_pointer_check(lib, feeds, got):.1e}"
                half = _is_fp16(name)  # against PyTorch in fp16 too (its tensor cores)
                net = torch_anchor(name.split("_fp16")[0])
                if net is not None:
                    x = torch.from_numpy(next(iter(feeds.values())))
                    net, x = (net.half(), x.half()) if half else (net, x)
                    t_gpu, t_wall = _torch_ms(net, x, args.runs)
                    t_graph = _torch_graph_ms(net, x, args.runs)
                    cells.update(torch=f"{t_gpu:.3f}", ratio=f"{gpu / t_gpu:.2f}", torch_wall=f"{t_wall:.3f}")
                    if t_graph:
                        cells.update(graph=f"{t_graph:.3f}", graph_ratio=f"{gpu / t_graph:.2f}")
                    del net
                if args.profile and name in args.profile:
                    profiles.append((name, _kernel_profile(lib, feeds, args.top)))
            print(
                f"| {name} | {worst:.2e} | {'yes' if ok else 'NO'} | {cells['device']} | {gpu:.3f} | {one_by_one} "
                f"| {cells['torch']} "
                f"| {cells['ratio']} | {cells['graph']} | {cells['graph_ratio']} | {cells['wall']} "
                f"| {cells['torch_wall']} |",
                flush=True,
            )
            # kept open: the profiler names kernels by function handle, and a closed library's
            # handles are reused by the next one's modules (its kernels then get the old names)
            opened.append(lib)
    for name, lines in profiles:
        print(f"\n{name}: kernels by GPU time (PyTorch profiler, 5 runs)\n" + "\n".join(lines), flush=True)
    return 1 if failures else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    c = sub.add_parser("compile")
    c.add_argument("--arch", default="sm_90")
    c.add_argument("--dir", required=True)
    c.add_argument("--models", nargs="+", required=True)
    c.add_argument("--jobs", type=int, default=0, help="parallel nvcc jobs (0: one per core)")
    c.add_argument("--sign-weights", action="store_true", help="random-sign weights, so that libraries compress")
    c.add_argument("--xz", action="store_true", help="write NAME.so.xz instead of NAME.so")
    c.add_argument("--passes", default="", help="passes after the default pipeline (convert-float16)")
    c.add_argument("--suffix", default="", help="appended to each model's file names (_fp16, _fp16_simt)")
    c.add_argument("--target-options", default="", help="after cuda:ARCH, e.g. tensor_cores=0")
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--runs", type=int, default=50)
    r.add_argument("--models", nargs="*", help="only these (default: every library in DIR)")
    r.add_argument("--profile", nargs="*", default=[], help="print these models' kernels by GPU time")
    r.add_argument("--top", type=int, default=12)
    r.add_argument("--no-torch", action="store_true", help="no PyTorch: no anchor, run_device check or profile")
    r.add_argument("--graph-off-too", action="store_true", help="also time each library with EMBER_CUDA_GRAPHS=0")
    args = ap.parse_args(argv)
    np.random.seed(0)
    return compile_all(args) if args.step == "compile" else run_all(args)


if __name__ == "__main__":
    sys.exit(main())
