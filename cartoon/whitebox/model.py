"""White-box cartoonizer generator (Wang & Yu, CVPR 2020), narrowed to train and run on a CPU.

A small U-Net — two stride-2 stages, residual blocks at a quarter of the resolution, bilinear
upsampling with additive skips — predicts a cartoon, and a guided filter under the input photo
then snaps its colour regions to the photo's edges. The network is fully convolutional: any
height and width work, padded inside to a multiple of 4 and cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from cartoon.whitebox.guided_filter import guided_filter

DOWNSAMPLING = 4  # two stride-2 stages


def conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=1)


def activation() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv(channels, channels), activation(), conv(channels, channels))

    def forward(self, x):
        return x + self.body(x)


class Generator(nn.Module, PyTorchModelHubMixin):
    """Photo (N, 3, H, W) in [-1, 1] → cartoon of the same size, roughly in [-1, 1].

    channels: width at full resolution (doubled at each stage); the original uses 32. 12 keeps
        inference under a fifth of the original's time (bench/cartoonize.py).
    blocks: residual blocks at the lowest resolution; the original uses 4.
    radius, eps: the output guided filter; eps=0 would disable its smoothing.
    """

    def __init__(self, channels: int = 12, blocks: int = 4, radius: int = 1, eps: float = 5e-3):
        super().__init__()
        c = channels
        self.radius, self.eps = radius, eps
        self.stem = nn.Sequential(conv(3, c), activation())
        self.down1 = nn.Sequential(conv(c, c, stride=2), activation(), conv(c, 2 * c), activation())
        self.down2 = nn.Sequential(conv(2 * c, 2 * c, stride=2), activation(), conv(2 * c, 4 * c), activation())
        self.blocks = nn.Sequential(*[ResidualBlock(4 * c) for _ in range(blocks)])
        self.reduce2 = nn.Sequential(conv(4 * c, 2 * c), activation())
        self.up1 = nn.Sequential(conv(2 * c, 2 * c), activation(), conv(2 * c, c), activation())
        self.head = conv(c, 3)

    def unet(self, photo: torch.Tensor) -> torch.Tensor:
        """The raw cartoon, before the guided filter (input sides must be multiples of 4)."""
        full = self.stem(photo)
        half = self.down1(full)
        quarter = self.blocks(self.down2(half))
        half = self.up1(half + _upsample(self.reduce2(quarter)))
        return self.head(full + _upsample(half))

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        height, width = photo.shape[-2:]
        pad_h, pad_w = -height % DOWNSAMPLING, -width % DOWNSAMPLING
        padded = F.pad(photo, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else photo
        cartoon = self.unet(padded)[..., :height, :width]
        return guided_filter(photo, cartoon, self.radius, self.eps)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
