"""Ops for Caffe semantics no ONNX op expresses: ``caffe.DetectionOutput``.

Declared here, not in the Caffe frontend, so that a ``.ir`` file using them
parses, verifies and runs whatever was imported before.

SSD's DetectionOutput decodes box offsets against prior boxes, runs greedy
non-maximum suppression per class, keeps the ``keep_top_k`` best detections
overall and returns them as rows ``[image, label, score, xmin, ymin, xmax,
ymax]`` in a ``[1, 1, N, 7]`` tensor, N data-dependent (one row of -1 when
nothing is detected).  Rows come image by image, label by label (ascending),
best score first.  (PriorBox needs no op: with static shapes its output is a
constant, computed by the importer.)
"""

from __future__ import annotations

import numpy as np

from ..ir.types import DType, TensorType
from .declare import Family
from .registry import AttrSpec, Trait, get_op

FAMILY = Family("caffe")

CODE_TYPES = ("CORNER", "CENTER_SIZE", "CORNER_SIZE")


def decode_boxes(
    loc: np.ndarray, priors: np.ndarray, variances: np.ndarray, code_type: str, variance_in_target: bool
) -> np.ndarray:
    """Boxes [P, 4] (corners) from offsets ``loc`` [P, 4] against ``priors`` [P, 4] (corners)."""
    var = np.ones_like(variances) if variance_in_target else variances
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    if code_type == "CORNER":
        return priors + var * loc
    if code_type == "CORNER_SIZE":
        size = np.stack([pw, ph, pw, ph], axis=1)
        return priors + var * loc * size
    pcx, pcy = (priors[:, 0] + priors[:, 2]) / 2, (priors[:, 1] + priors[:, 3]) / 2
    cx = var[:, 0] * loc[:, 0] * pw + pcx
    cy = var[:, 1] * loc[:, 1] * ph + pcy
    w = np.exp(var[:, 2] * loc[:, 2]) * pw
    h = np.exp(var[:, 3] * loc[:, 3]) * ph
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two corner boxes in normalised coordinates."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    area = lambda box: max(box[2] - box[0], 0) * max(box[3] - box[1], 0)  # noqa: E731
    return float(inter / (area(a) + area(b) - inter))


def nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, nms_threshold: float, eta: float, top_k: int
) -> list[int]:
    """Greedy NMS over candidates scoring above ``threshold`` (best ``top_k`` of them when >= 0)."""
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > threshold]
    if top_k >= 0:
        order = order[:top_k]
    kept: list[int] = []
    adaptive = nms_threshold
    for i in order:
        if all(jaccard(boxes[i], boxes[k]) <= adaptive for k in kept):
            kept.append(int(i))
            if eta < 1 and adaptive > 0.5:
                adaptive *= eta
    return kept


def _detect_image(boxes, conf, a) -> list[tuple[int, int, float]]:
    """(label, prior index, score) kept for one image; ``boxes`` [P, num_loc, 4], ``conf`` [P, classes]."""
    num_classes, background = a["num_classes"], a["background_label_id"]
    found = []
    for label in range(num_classes):
        if label == background:
            continue
        label_boxes = boxes[:, 0 if a["share_location"] else label]
        for i in nms(label_boxes, conf[:, label], a["confidence_threshold"], a["nms_threshold"], a["eta"], a["top_k"]):
            found.append((label, i, float(conf[i, label])))
    if 0 <= a["keep_top_k"] < len(found):
        found = sorted(found, key=lambda f: -f[2])[: a["keep_top_k"]]
    return sorted(found, key=lambda f: (f[0], -f[2]))


def _attrs(attrs: dict) -> dict:
    spec = get_op("caffe.DetectionOutput").attrs
    return {name: attrs.get(name, s.default) for name, s in spec.items()}


def detection_output_reference(inputs, attrs, ctx):
    """The NumPy kernel of ``caffe.DetectionOutput``."""
    a = _attrs(attrs)
    loc, conf, prior = (np.asarray(x, dtype=np.float32) for x in inputs)
    n, num_classes = loc.shape[0], a["num_classes"]
    priors = prior[0, 0].reshape(-1, 4)
    variances = prior[0, 1].reshape(-1, 4)
    num_loc = 1 if a["share_location"] else num_classes
    rows = []
    for image in range(n):
        offsets = loc[image].reshape(-1, num_loc, 4)
        boxes = np.stack(
            [
                decode_boxes(offsets[:, c], priors, variances, a["code_type"], a["variance_encoded_in_target"])
                for c in range(num_loc)
            ],
            axis=1,
        )
        scores = conf[image].reshape(-1, num_classes)
        for label, i, score in _detect_image(boxes, scores, a):
            box = boxes[i, 0 if a["share_location"] else label]
            rows.append([image, label, score, *box])
    out = np.asarray(rows, dtype=np.float32).reshape(-1, 7) if rows else -np.ones((1, 7), np.float32)
    return [out.reshape(1, 1, -1, 7)]


def _infer(ctx):
    return [TensorType(DType.FLOAT32, (1, 1, None, 7))]


FAMILY.op(
    "caffe.DetectionOutput",
    domain="caffe",
    inputs=(3, 3),
    outputs=(1, 1),
    traits=frozenset({Trait.PURE}),
    infer=_infer,
    kernel=detection_output_reference,
    attrs=[
        AttrSpec("num_classes", "int", 2),
        AttrSpec("share_location", "int", 1),
        AttrSpec("background_label_id", "int", 0),
        AttrSpec("nms_threshold", "float", 0.3),
        AttrSpec("top_k", "int", -1),
        AttrSpec("eta", "float", 1.0),
        AttrSpec("keep_top_k", "int", -1),
        AttrSpec("confidence_threshold", "float", -3.4e38),
        AttrSpec("code_type", "string", "CORNER"),
        AttrSpec("variance_encoded_in_target", "int", 0),
    ],
    doc="SSD detection output: decode boxes against priors, per-class NMS, keep_top_k; rows "
    "[image, label, score, xmin, ymin, xmax, ymax] in a [1, 1, N, 7] tensor.",
)
