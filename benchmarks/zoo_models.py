"""The benchmark zoo's models: which architectures, their input shapes, and their export to ONNX.

Each model is built from PyTorch with fixed random weights (``torch.manual_seed``) and
BatchNorm statistics calibrated on a random batch (see ``_calibrate_batch_norms``), batch 1, and
exported once to ``<cache>/<name>.onnx`` (the cache is ``$EMBER_ZOO_CACHE`` or
``~/.cache/ember/zoo``); an existing file is reused.  The export uses the TorchScript exporter
(``torch.onnx.export(..., dynamo=False)``) at opset ``OPSET``: it is quick and gives the plain
op-level graphs that deployed models ship with.  BERT-base is the ONNX-built encoder of
``benchmarks/model_zoo.py`` (no torch needed).

This module imports torch only inside ``export``, so the model list can be read without it."""

from __future__ import annotations

import os
from dataclasses import dataclass

OPSET = 17
SEED = 0


@dataclass(frozen=True)
class ZooModel:
    name: str
    input_shape: tuple[int, ...]
    source: str  # "torchvision:<builder>", "zoo_nets:<class>" or "model_zoo:<function>"


def _vision(name: str, builder: str | None = None, size: int = 224) -> ZooModel:
    return ZooModel(name, (1, 3, size, size), f"torchvision:{builder or name}")


ZOO: tuple[ZooModel, ...] = (
    _vision("resnet50"),
    _vision("mobilenet_v2"),
    _vision("mobilenet_v3_large"),
    _vision("efficientnet_b0"),
    _vision("shufflenet_v2_x1_0"),
    _vision("regnet_y_800mf"),
    _vision("convnext_tiny"),
    _vision("densenet121"),
    _vision("squeezenet1_1"),
    _vision("vit_b_16"),
    ZooModel("bert_base", (1, 128, 768), "model_zoo:bert_base"),
    ZooModel("crnn", (1, 3, 48, 320), "zoo_nets:CRNN"),
    ZooModel("dbnet", (1, 3, 640, 640), "zoo_nets:DBNet"),
    ZooModel("yolov8", (1, 3, 640, 640), "zoo_nets:YOLOv8"),
)

MODELS: dict[str, ZooModel] = {m.name: m for m in ZOO}


def cache_dir() -> str:
    return os.environ.get("EMBER_ZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ember", "zoo")


def select(names: str | None) -> list[ZooModel]:
    """The models named in a comma-separated list (all when empty); unknown names raise ValueError."""
    if not names:
        return list(ZOO)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown zoo model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    return [MODELS[n] for n in wanted]


def _torch_module(model: ZooModel):
    import torch

    kind, builder = model.source.split(":")
    torch.manual_seed(SEED)
    if kind == "torchvision":
        import torchvision

        module = getattr(torchvision.models, builder)(weights=None)
        for layer in module.modules():  # ViT's head starts at zero: its output would not depend on the input
            if isinstance(layer, torch.nn.Linear) and not layer.weight.any():
                torch.nn.init.normal_(layer.weight, std=0.02)
        return module
    import zoo_nets

    return getattr(zoo_nets, builder)()


def _calibrate_batch_norms(module, input_shape: tuple[int, ...]) -> None:
    """Set every BatchNorm's running statistics from one random input, as training would.

    Left at their initial mean 0 / variance 1, the norms leave activations at whatever scale the
    random weights give: in torchvision's depthwise nets (kaiming fan-out init) they shrink about
    100x per block, so outputs end near 1e-14 and activations go subnormal, which is slow on CPUs
    and says nothing about real models.  Calibrated norms keep activations near unit scale."""
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the calibration batch
    module.train()
    with torch.no_grad():
        module(torch.randn(*input_shape))
    module.eval()


def export(model: ZooModel, directory: str | None = None) -> str:
    """Path of ``model``'s ONNX file, exported first when it is not in the cache."""
    directory = directory or cache_dir()
    path = os.path.join(directory, f"{model.name}.onnx")
    if os.path.exists(path):
        return path
    os.makedirs(directory, exist_ok=True)
    partial = path + ".partial"
    kind, builder = model.source.split(":")
    if kind == "model_zoo":
        import model_zoo
        import onnx

        onnx.save(getattr(model_zoo, builder)(), partial)
    else:
        import torch

        module = _torch_module(model)
        _calibrate_batch_norms(module, model.input_shape)
        torch.backends.mha.set_fastpath_enabled(False)  # else vit_b_16 traces to an op with no ONNX form
        torch.manual_seed(SEED)
        example = torch.randn(*model.input_shape)
        with torch.no_grad():
            torch.onnx.export(
                module,
                (example,),
                partial,
                input_names=["input"],
                output_names=["output"],
                opset_version=OPSET,
                dynamo=False,
            )
    os.replace(partial, path)
    return path
