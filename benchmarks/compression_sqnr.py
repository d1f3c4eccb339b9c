"""SQNR of Ember's int8 and bf16 outputs against fp32 on the benchmark CNNs, next to onnxruntime's
quantizer on the same calibration set, with scikit-image's bundled photographs as inputs.

    python benchmarks/compression_sqnr.py --model resnet50 --resolution 224

The photographs are split in two: even-numbered ones calibrate, odd-numbered ones evaluate.  The
models are ``benchmarks/model_zoo.py``'s (random weights, fixed seeds).  Ember's models run through
its interpreter; onnxruntime's quantized model (``quantize_static``, QDQ, per-channel, MinMax) runs
in onnxruntime.  Needs scikit-image (``pip install scikit-image``).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "horse", "moon", "coins", "clock", "page", "brick")
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def photographs(resolution: int) -> list[np.ndarray]:
    """The bundled photographs as ImageNet-normalised ``[1, 3, R, R]`` float32 tensors."""
    from skimage import data
    from skimage.color import gray2rgb, rgba2rgb
    from skimage.transform import resize

    out = []
    for name in PHOTOS:
        try:
            image = getattr(data, name)()
        except Exception:  # a photograph that would need a download
            continue
        image = np.asarray(image, dtype=np.float64)
        image = image / 255.0 if image.max() > 1 else image
        if image.ndim == 2:
            image = gray2rgb(image)
        elif image.shape[-1] == 4:
            image = rgba2rgb(image)
        image = resize(image, (resolution, resolution), anti_aliasing=True)
        out.append(((image - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32))
    return out


def sqnr_db(reference: list[np.ndarray], approx: list[np.ndarray]) -> float:
    ref, got = np.concatenate([r.ravel() for r in reference]), np.concatenate([a.ravel() for a in approx])
    return float(10 * np.log10((ref**2).sum() / ((got - ref) ** 2).sum()))


def main() -> None:
    import onnx
    import onnxruntime
    from onnxruntime import quantization as ortq

    from benchmarks.model_zoo import MODELS
    from compiler.compression import quantize_model
    from compiler.ir.interpreter import interpret_list
    from frontends.onnx import import_model
    from passes.convert_float import ConvertBFloat16Pass

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50", choices=("resnet50", "mobilenet_v2"))
    parser.add_argument("--resolution", type=int, default=224)
    args = parser.parse_args()

    model = MODELS[args.model](args.resolution)
    name = model.graph.input[0].name
    photos = photographs(args.resolution)
    calibration, evaluation = photos[0::2], photos[1::2]
    print(f"{args.model} @ {args.resolution}: {len(calibration)} calibration, {len(evaluation)} evaluation photos")

    def run(graph, inputs):
        return [interpret_list(graph, {name: x})[0] for x in inputs]

    start = time.time()
    reference = run(import_model(model), evaluation)
    int8 = import_model(model)
    quantize_model(int8, [{name: x} for x in calibration])
    ours = run(int8, evaluation)
    bf16 = import_model(model)
    ConvertBFloat16Pass()(bf16)
    ours_bf16 = run(bf16, evaluation)

    class Reader(ortq.CalibrationDataReader):
        def __init__(self):
            self.items = iter([{name: x} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model, f"{tmp}/fp32.onnx")
        ortq.quantize_static(
            f"{tmp}/fp32.onnx", f"{tmp}/int8.onnx", Reader(), quant_format=ortq.QuantFormat.QDQ, per_channel=True
        )
        session = onnxruntime.InferenceSession(f"{tmp}/int8.onnx")
        theirs = [session.run(None, {name: x})[0] for x in evaluation]
    print(f"  Ember int8 (minmax, per-channel QDQ)       SQNR {sqnr_db(reference, ours):6.2f} dB")
    print(f"  onnxruntime quantize_static (same set)     SQNR {sqnr_db(reference, theirs):6.2f} dB")
    print(f"  Ember bf16 (convert-bfloat16)              SQNR {sqnr_db(reference, ours_bf16):6.2f} dB")
    print(f"  ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
