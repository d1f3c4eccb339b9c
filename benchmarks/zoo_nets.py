"""The zoo's hand-written PyTorch models: a CRNN text recogniser, a DBNet-style text detector and a
YOLOv8-style detector, each sized like the deployed ones (random weights, eval mode, batch 1).

Imported only when a model is exported (this module needs torch)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, act: type[nn.Module] | None = nn.ReLU, groups: int = 1):
    """Conv (no bias) + BatchNorm + optional activation, padded to keep the size at stride 1."""
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


# CRNN -------------------------------------------------------------------------------------------
class CRNN(nn.Module):
    """Conv trunk (48x320 -> 1x80 columns), a 2-layer bidirectional LSTM, a Linear over the alphabet.
    Output: [80, 1, classes] (time, batch, classes), as a CTC decoder reads it."""

    def __init__(self, classes: int = 8000, hidden: int = 256):
        super().__init__()
        self.trunk = nn.Sequential(
            conv_bn(3, 64),
            nn.MaxPool2d(2),  # 24x160
            conv_bn(64, 128),
            nn.MaxPool2d(2),  # 12x80
            conv_bn(128, 256),
            conv_bn(256, 256),
            nn.MaxPool2d((2, 1)),  # 6x80
            conv_bn(256, 512),
            conv_bn(512, 512),
            nn.MaxPool2d((2, 1)),  # 3x80
            nn.Conv2d(512, 512, (3, 1)),  # 1x80
            nn.ReLU(),
        )
        self.rnn = nn.LSTM(512, hidden, num_layers=2, bidirectional=True)
        self.classifier = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        features = self.trunk(x).squeeze(2).permute(2, 0, 1)  # [T, 1, 512]
        seq, _ = self.rnn(features)
        return self.classifier(seq)


# DBNet ------------------------------------------------------------------------------------------
class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, max(8, channels // 4), 1)
        self.expand = nn.Conv2d(max(8, channels // 4), channels, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.expand(F.relu(self.reduce(s))))


class InvertedResidual(nn.Module):
    """MobileNetV3 block: 1x1 expand, depthwise kxk, optional squeeze-excite, 1x1 project."""

    def __init__(self, cin: int, hidden: int, cout: int, k: int, stride: int, se: bool, act: type[nn.Module]):
        super().__init__()
        self.expand = conv_bn(cin, hidden, 1, act=act) if hidden != cin else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, k, stride, act=act, groups=hidden)
        self.se = SqueezeExcite(hidden) if se else nn.Identity()
        self.project = conv_bn(hidden, cout, 1, act=None)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class DBNet(nn.Module):
    """MobileNetV3-small-like backbone (strides 4..32), FPN with nearest Resize, and the DB head:
    3x3 conv then two stride-2 ConvTranspose back to full resolution.  Output: [1, 1, H, W]."""

    # (expand, out, kernel, stride, squeeze-excite, activation) per block, grouped by output stride
    STAGES = [
        [(16, 16, 3, 2, True, nn.ReLU)],  # stride 4
        [(72, 24, 3, 2, False, nn.ReLU), (88, 24, 3, 1, False, nn.ReLU)],  # stride 8
        [(96, 40, 5, 2, True, nn.Hardswish), (240, 40, 5, 1, True, nn.Hardswish), (120, 48, 5, 1, True, nn.Hardswish)],
        [(288, 96, 5, 2, True, nn.Hardswish), (576, 96, 5, 1, True, nn.Hardswish)],  # stride 32
    ]

    def __init__(self, inner: int = 96):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2, act=nn.Hardswish)
        stages, cin, widths = [], 16, []
        for blocks in self.STAGES:
            layers = []
            for hidden, cout, k, stride, se, act in blocks:
                layers.append(InvertedResidual(cin, hidden, cout, k, stride, se, act))
                cin = cout
            stages.append(nn.Sequential(*layers))
            widths.append(cin)
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Conv2d(w, inner, 1, bias=False) for w in widths)
        self.smooth = nn.ModuleList(nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False) for _ in widths)
        q = inner // 4
        self.head = nn.Sequential(
            conv_bn(inner, q, 3),
            nn.ConvTranspose2d(q, q, 2, 2),
            nn.BatchNorm2d(q),
            nn.ReLU(),
            nn.ConvTranspose2d(q, 1, 2, 2),
            nn.Sigmoid(),
        )

    def forward(self, x):
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        laterals = [lat(f) for lat, f in zip(self.lateral, features)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], scale_factor=2.0, mode="nearest")
        maps = [
            F.interpolate(smooth(lat), scale_factor=float(2**i), mode="nearest") if i else smooth(lat)
            for i, (smooth, lat) in enumerate(zip(self.smooth, laterals))
        ]
        return self.head(torch.cat(maps, 1))


# YOLOv8 -----------------------------------------------------------------------------------------
def conv_silu(cin: int, cout: int, k: int = 3, stride: int = 1):
    return conv_bn(cin, cout, k, stride, act=nn.SiLU)


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool):
        super().__init__()
        self.cv1, self.cv2, self.shortcut = conv_silu(c, c), conv_silu(c, c), shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.shortcut else y


class C2f(nn.Module):
    """1x1 conv, Split in two, n bottlenecks each adding its output to the list, Concat, 1x1 conv."""

    def __init__(self, cin: int, cout: int, n: int, shortcut: bool):
        super().__init__()
        self.c = cout // 2
        self.cv1 = conv_silu(cin, 2 * self.c, 1)
        self.cv2 = conv_silu((2 + n) * self.c, cout, 1)
        self.blocks = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x):
        ys = list(self.cv1(x).split((self.c, self.c), 1))
        for block in self.blocks:
            ys.append(block(ys[-1]))
        return self.cv2(torch.cat(ys, 1))


class SPPF(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.cv1, self.cv2 = conv_silu(cin, cin // 2, 1), conv_silu(cin * 2, cout, 1)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        return self.cv2(torch.cat([x, y1, y2, self.pool(y2)], 1))


class YOLOv8(nn.Module):
    """The n-scale layout (widths 16..256): backbone with C2f and SPPF, PAN neck, decoupled head
    with a DFL box decoder (Softmax over 16 bins).  Output: [1, 4 + classes, anchors]."""

    def __init__(self, classes: int = 80, size: int = 640, bins: int = 16):
        super().__init__()
        self.classes, self.bins = classes, bins
        self.b1 = nn.Sequential(conv_silu(3, 16, 3, 2), conv_silu(16, 32, 3, 2), C2f(32, 32, 1, True))
        self.b2 = nn.Sequential(conv_silu(32, 64, 3, 2), C2f(64, 64, 2, True))  # P3 (stride 8)
        self.b3 = nn.Sequential(conv_silu(64, 128, 3, 2), C2f(128, 128, 2, True))  # P4
        self.b4 = nn.Sequential(conv_silu(128, 256, 3, 2), C2f(256, 256, 1, True), SPPF(256, 256))  # P5
        self.up4, self.up3 = C2f(384, 128, 1, False), C2f(192, 64, 1, False)
        self.down3, self.pan4 = conv_silu(64, 64, 3, 2), C2f(192, 128, 1, False)
        self.down4, self.pan5 = conv_silu(128, 128, 3, 2), C2f(384, 256, 1, False)
        self.box = nn.ModuleList(
            nn.Sequential(conv_silu(c, 64), conv_silu(64, 64), nn.Conv2d(64, 4 * bins, 1)) for c in (64, 128, 256)
        )
        self.cls = nn.ModuleList(
            nn.Sequential(conv_silu(c, 80), conv_silu(80, 80), nn.Conv2d(80, classes, 1)) for c in (64, 128, 256)
        )
        self.register_buffer("bin_weights", torch.arange(bins, dtype=torch.float32).view(1, bins, 1, 1))
        anchors, strides = [], []
        for stride in (8, 16, 32):
            n = size // stride
            ys, xs = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
            anchors.append(torch.stack([xs.flatten(), ys.flatten()]))
            strides.append(torch.full((1, n * n), float(stride)))
        self.register_buffer("anchors", torch.cat(anchors, 1).unsqueeze(0))  # [1, 2, A]
        self.register_buffer("strides", torch.cat(strides, 1).unsqueeze(0))  # [1, 1, A]

    def forward(self, x):
        p3 = self.b2(self.b1(x))
        p4 = self.b3(p3)
        p5 = self.b4(p4)
        n4 = self.up4(torch.cat([F.interpolate(p5, scale_factor=2.0, mode="nearest"), p4], 1))
        n3 = self.up3(torch.cat([F.interpolate(n4, scale_factor=2.0, mode="nearest"), p3], 1))
        n4 = self.pan4(torch.cat([self.down3(n3), n4], 1))
        n5 = self.pan5(torch.cat([self.down4(n4), p5], 1))
        levels = [torch.cat([box(f), cls(f)], 1).flatten(2) for box, cls, f in zip(self.box, self.cls, (n3, n4, n5))]
        out = torch.cat(levels, 2)  # [1, 4*bins + classes, A]
        box, cls = out.split((4 * self.bins, self.classes), 1)
        anchors = box.shape[-1]
        bins = box.view(1, 4, self.bins, anchors).transpose(2, 1).softmax(1)  # DFL: [1, bins, 4, A]
        dist = F.conv2d(bins, self.bin_weights).view(1, 4, anchors)
        left_top, right_bottom = dist.chunk(2, 1)
        xy0, xy1 = self.anchors - left_top, self.anchors + right_bottom
        boxes = torch.cat([(xy0 + xy1) / 2, xy1 - xy0], 1) * self.strides
        return torch.cat([boxes, cls.sigmoid()], 1)
