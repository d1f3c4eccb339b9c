"""Node counts after Ember's O2 pipeline vs onnx-simplifier and onnxruntime, with an output check.

    python scripts/compare_onnxsim.py [--models light_resnet50,bert_base,...] [--pipeline O2] [--markdown]

Models: the onnx package's ``light_*`` zoo models (onnx/backend/test/data/light), the
ResNet-50, MobileNetV2 and BERT-base-style encoder of ``benchmarks/model_zoo.py`` and, when
torch is installed, ``bert_torch``: a BERT-base encoder (embeddings, attention mask, 12 layers)
exported by ``torch.onnx.export`` (TorchScript exporter, opset 17, fixed seed), or any ``.onnx`` path.
For each model it prints the node count of the original, of ``onnxsim.simplify(model)``,
of onnxruntime's ``ORT_ENABLE_EXTENDED`` offline-optimized model
(``SessionOptions.optimized_model_filepath``) and of Ember (import, pipeline, ``export_model``),
and the largest difference between the outputs of onnxruntime on the original and on Ember's
model for one random input (fixed seed).  Exits non-zero if Ember leaves more nodes than onnxsim
or the outputs disagree.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
import tempfile
import time

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from compiler.testing.onnx_feeds import random_feeds  # noqa: E402

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
BUILT = ("resnet50", "mobilenet_v2", "bert_base")
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def load(name: str) -> onnx.ModelProto:
    """A ``light_*`` zoo model by file stem, a model built by ``benchmarks/model_zoo.py``, or an .onnx path."""
    if name.endswith(".onnx"):
        return onnx.load(name)
    if name == "bert_torch":
        return torch_bert()
    if name in BUILT:
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        from model_zoo import MODELS

        return MODELS[name]()
    return onnx.load(os.path.join(LIGHT_DIR, f"{name}.onnx"))


def all_models() -> list[str]:
    light = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(LIGHT_DIR, "light_*.onnx")))
    return light + list(BUILT) + (["bert_torch"] if HAVE_TORCH else [])


def torch_bert(layers: int = 12, hidden: int = 768, heads: int = 12, seq: int = 128) -> onnx.ModelProto:
    """A BERT-base encoder with random weights (seed 0) exported by torch's TorchScript ONNX exporter."""
    import math

    import torch
    from torch import nn

    torch.manual_seed(0)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(hidden, eps=1e-12), nn.LayerNorm(hidden, eps=1e-12)
            self.up, self.down = nn.Linear(hidden, 4 * hidden), nn.Linear(4 * hidden, hidden)

        def heads(self, x):
            return x.view(x.shape[0], x.shape[1], heads, hidden // heads).permute(0, 2, 1, 3)

        def forward(self, x, mask):
            q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
            scores = q @ k.transpose(-1, -2) / math.sqrt(hidden // heads) + mask
            context = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(x.shape)
            x = self.ln1(x + self.o(context))
            return self.ln2(x + self.down(nn.functional.gelu(self.up(x))))

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.word, self.pos, self.kind = (
                nn.Embedding(30522, hidden),
                nn.Embedding(512, hidden),
                nn.Embedding(2, hidden),
            )
            self.ln = nn.LayerNorm(hidden, eps=1e-12)
            self.layers = nn.ModuleList(Layer() for _ in range(layers))

        def forward(self, ids, attention_mask):
            positions = torch.arange(ids.shape[1]).unsqueeze(0)
            x = self.ln(self.word(ids) + self.pos(positions) + self.kind(torch.zeros_like(ids)))
            mask = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
            for layer in self.layers:
                x = layer(x, mask)
            return x

    ids = torch.randint(0, 30522, (1, seq))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bert.onnx")
        torch.onnx.export(
            Bert().eval(),
            (ids, torch.ones(1, seq, dtype=torch.int64)),
            path,
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["hidden"],
            opset_version=17,
        )
        return onnx.load(path)


def ort_session(model: onnx.ModelProto, level=None, save_to: str | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    if level is not None:
        opts.graph_optimization_level = level
    if save_to:
        opts.optimized_model_filepath = save_to
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def ort_extended_count(model: onnx.ModelProto) -> int:
    """Nodes in onnxruntime's offline-optimized model at ORT_ENABLE_EXTENDED."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "opt.onnx")
        ort_session(model, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, path)
        return len(onnx.load(path, load_external_data=False).graph.node)


def onnxsim_count(model: onnx.ModelProto) -> int:
    import onnxsim

    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise RuntimeError("onnxsim could not validate its result")
    return len(simplified.graph.node)


def ember_optimize(model: onnx.ModelProto, pipeline: str) -> onnx.ModelProto:
    """Import, run ``pipeline``, export."""
    from compiler.pipeline import PassManager
    from frontends.onnx import export_model, import_model

    graph = import_model(model)
    PassManager(pipeline).run(graph)
    return export_model(graph)


def output_difference(original: onnx.ModelProto, optimized: onnx.ModelProto) -> float:
    """Largest |difference| between the outputs, relative to the largest |output| (0 = identical)."""
    feeds = random_feeds(original)
    want = ort_session(original).run(None, feeds)
    have = ort_session(optimized).run(
        None, {k: v for k, v in feeds.items() if k in {i.name for i in optimized.graph.input}}
    )
    worst = 0.0
    for a, b in zip(want, have):
        scale = max(float(np.max(np.abs(a))), 1e-6) if a.size else 1.0
        worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b))) / scale if a.size else 0.0)
    return worst


def compare(name: str, pipeline: str = "O2") -> dict:
    """One row of the table."""
    model = load(name)
    start = time.perf_counter()
    optimized = ember_optimize(model, pipeline)
    seconds = time.perf_counter() - start
    return {
        "model": name,
        "original": len(model.graph.node),
        "onnxsim": onnxsim_count(model),
        "ort_extended": ort_extended_count(model),
        "ember": len(optimized.graph.node),
        "ember_seconds": seconds,
        "max_rel_diff": output_difference(model, optimized),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(all_models()))
    p.add_argument("--pipeline", default="O2")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest relative output difference allowed")
    args = p.parse_args()
    print(f"| model | original | onnxsim | ORT extended | Ember {args.pipeline} | Ember time (s) | max rel. diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    failed = False
    for name in args.models.split(","):
        row = compare(name, args.pipeline)
        ok = row["ember"] <= row["onnxsim"] and row["max_rel_diff"] <= args.tolerance
        failed |= not ok
        counts = " | ".join(str(row[k]) for k in ("original", "onnxsim", "ort_extended", "ember"))
        verdict = "" if ok else " FAIL"
        timing = f"{row['ember_seconds']:.1f} | {row['max_rel_diff']:.1e}{verdict}"
        print(f"| {os.path.basename(name)} | {counts} | {timing} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
