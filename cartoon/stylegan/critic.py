"""The style-based generator's critic (StyleGAN2's residual discriminator, sized for a CPU), used
only in training (`cartoon.stylegan.train`). Its optional hair and eye heads read its final
features beside the realness head, as the ACGAN's critic does (avatars v3)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cartoon.stylegan.model import EqualConv, EqualLinear, leaky


class DownBlock(nn.Module):
    """Residual ×0.5 block: two 3×3 convs with average pooling between, a pooled 1×1 conv as the skip."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv1 = EqualConv(channels_in, channels_in, 3)
        self.conv2 = EqualConv(channels_in, channels_out, 3)
        self.skip = EqualConv(channels_in, channels_out, 1, bias=False)

    def forward(self, x):
        # pooling before the second conv: a quarter of its cost, where a CPU step spends most
        h = leaky(self.conv2(F.avg_pool2d(leaky(self.conv1(x)), 2)))
        return (h + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


def head(features: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(EqualLinear(features, hidden, activate=True), EqualLinear(hidden, outputs))


class Discriminator(nn.Module):
    """Image → realness score: residual down blocks to 4², minibatch standard deviation, two linears.

    With `hair_classes`/`eye_classes`, `classify` reads the same final features (`features`)
    with a separate head per attribute, as the ACGAN's critic does. The flattened 4×4 map keeps
    the layout, so the eye head can look where eyes are."""

    def __init__(self, resolution: int = 64, max_channels: int = 64, channel_base: int = 4096, stddev_group: int = 4,
                 hair_classes: int = 0, eye_classes: int = 0):
        super().__init__()
        sizes = [resolution // 2**k for k in range(int(math.log2(resolution)) - 1)]  # resolution … 4
        channels = [min(max_channels, channel_base // size) for size in sizes]
        self.from_rgb = EqualConv(3, channels[0], 1)
        self.blocks = nn.Sequential(*[DownBlock(c_in, c_out) for c_in, c_out in zip(channels, channels[1:])])
        self.stddev_group = stddev_group
        self.final_conv = EqualConv(channels[-1] + 1, channels[-1], 3)
        self.final = head(channels[-1] * 16, channels[-1], 1)
        if hair_classes:
            self.hair = head(channels[-1] * 16, channels[-1], hair_classes)
            self.eyes = head(channels[-1] * 16, channels[-1], eye_classes)

    def minibatch_stddev(self, x):
        """One more channel: how much the images of a small group differ, so a collapsed batch shows."""
        n, _, h, w = x.shape
        group = math.gcd(n, self.stddev_group)
        spread = x.float().reshape(group, -1, *x.shape[1:]).var(0, unbiased=False).add(1e-8).sqrt().mean((1, 2, 3))
        return torch.cat([x, spread.repeat(group)[:, None, None, None].expand(n, 1, h, w).to(x.dtype)], 1)

    def features(self, images) -> torch.Tensor:
        x = self.blocks(leaky(self.from_rgb(images)))
        return leaky(self.final_conv(self.minibatch_stddev(x))).flatten(1)

    def classify(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hair logits, eye logits) from `features`."""
        return self.hair(features), self.eyes(features)

    def forward(self, images):
        return self.final(self.features(images)).squeeze(1)
