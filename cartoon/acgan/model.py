"""ACGAN for 64×64 anime faces conditioned on hair and eye colour (after MakeGirlsMoe).

Generator: noise + hair one-hot + eye one-hot → a 16×16 residual (SRResNet-style) trunk →
two ×2 upsamplings → RGB in [-1, 1]. Upsampling is a resize-convolution (nearest ×2, then a 3×3
conv), which cannot make the checkerboard a pixel shuffle's four interleaved filters leave when
they disagree (Odena et al. 2016); version 1's weights use the pixel shuffle and keep it.
Discriminator: a spectrally normalised residual trunk shared by three *separate* small MLP
heads: realness (hinge loss), hair class and eye class. Separate heads let the colour
classifiers specialise without pulling the realness features towards colour alone.
The defaults are MakeGirlsMoe's trunk: 64 channels, 16 residual blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from cartoon.runtime import PRECISIONS

HAIR_COLOURS = ("aqua", "black", "blonde", "blue", "brown", "gray", "green", "orange", "pink", "purple", "red", "white")
EYE_COLOURS = ("aqua", "black", "blue", "brown", "green", "orange", "pink", "purple", "red", "yellow")


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN plus the input, as in SRResNet."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return x + self.body(x)


class PixelShuffleUp(nn.Module):
    """×2 upsampling: a conv at the low resolution makes 4× the channels, pixel shuffle spreads them."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out * 4, 3, padding=1, bias=False)
        self.shuffle = nn.PixelShuffle(2)
        self.norm = nn.BatchNorm2d(channels_out)
        self.act = nn.PReLU(channels_out)

    def forward(self, x):
        return self.act(self.norm(self.shuffle(self.conv(x))))


class ResizeConvUp(nn.Module):
    """×2 upsampling: nearest-neighbour enlargement, then a conv at the high resolution.

    The same multiply-adds as PixelShuffleUp: a quarter of the output channels at four times the pixels.
    """

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels_out)
        self.act = nn.PReLU(channels_out)

    def forward(self, x):
        return self.act(self.norm(self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))))


UPSAMPLERS = {"resize": ResizeConvUp, "pixel_shuffle": PixelShuffleUp}


class Generator(nn.Module, PyTorchModelHubMixin):
    """(noise, hair index, eye index) → 64×64 RGB face in [-1, 1]."""

    def __init__(self, noise_dim: int = 128, hair_classes: int = 12, eye_classes: int = 10, width: int = 64, blocks: int = 16,
                 upsample: str = "resize", render_precision: str = "fp32"):
        """`render_precision`: how `cartoon.acgan.render` computes this generator's faces, part of what a
        recipe's pixels are: "bf16" (autocast, channels-last; ~2.5× faster on CPUs with native bf16)
        or "fp32", the default, so that weights saved before the choice existed keep their pixels."""
        super().__init__()
        if upsample not in UPSAMPLERS:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLERS)}, not {upsample!r}")
        if render_precision not in PRECISIONS:
            raise ValueError(f"render_precision must be one of {', '.join(PRECISIONS)}, not {render_precision!r}")
        self.render_precision = render_precision
        self.noise_dim, self.hair_classes, self.eye_classes = noise_dim, hair_classes, eye_classes
        self.width = width
        self.project = nn.Sequential(
            nn.Linear(noise_dim + hair_classes + eye_classes, width * 16 * 16, bias=False),
            nn.BatchNorm1d(width * 16 * 16),
            nn.PReLU(),
        )
        self.trunk = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.trunk_out = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width))
        up = UPSAMPLERS[upsample]
        self.upsample = nn.Sequential(up(width, width // 2), up(width // 2, width // 4))
        self.to_rgb = nn.Conv2d(width // 4, 3, 5, padding=2)

    def forward(self, noise: torch.Tensor, hair: torch.Tensor, eyes: torch.Tensor) -> torch.Tensor:
        """`hair`/`eyes` are class indices (N,) or class weights (N, classes); weights allow blending."""
        hair = F.one_hot(hair, self.hair_classes).float() if hair.dim() == 1 else hair
        eyes = F.one_hot(eyes, self.eye_classes).float() if eyes.dim() == 1 else eyes
        x = self.project(torch.cat([noise, hair, eyes], dim=1)).view(-1, self.width, 16, 16)
        x = x + self.trunk_out(self.trunk(x))  # long skip around the trunk, as in SRResNet
        return torch.tanh(self.to_rgb(self.upsample(x)))


class DownBlock(nn.Module):
    """Residual ×0.5 downsampling block (BigGAN discriminator style), spectrally normalised."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(channels_in, channels_out, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(channels_out, channels_out, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(channels_in, channels_out, 1))

    def forward(self, x):
        # pooling before the second conv halves its cost without changing what the block can express much
        h = F.avg_pool2d(self.conv1(F.leaky_relu(x, 0.2)), 2)
        h = self.conv2(F.leaky_relu(h, 0.2))
        return h + self.skip(F.avg_pool2d(x, 2))


def mlp_head(features: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(spectral_norm(nn.Linear(features, hidden)), nn.LeakyReLU(0.2), spectral_norm(nn.Linear(hidden, outputs)))


class Discriminator(nn.Module):
    """64×64 image → (realness score, hair logits, eye logits)."""

    def __init__(self, hair_classes: int = 12, eye_classes: int = 10, width: int = 16):
        super().__init__()
        # a strided 4×4 conv halves the resolution at once: full-resolution convs cost most on a CPU
        self.from_rgb = spectral_norm(nn.Conv2d(3, width, 4, stride=2, padding=1))  # 32×32
        self.trunk = nn.Sequential(
            DownBlock(width, width * 2),  # 16×16
            DownBlock(width * 2, width * 4),  # 8×8
            DownBlock(width * 4, width * 8),  # 4×4
        )
        features = width * 8
        self.realness = mlp_head(features, features, 1)
        self.hair = mlp_head(features, features, hair_classes)
        # Eyes are a few pixels at a fixed place in these crops: their head sees the 4×4 map
        # laid out flat, so it can look where the eyes are; pooled features are ruled by hair.
        self.eyes = mlp_head(features * 16, features, eye_classes)

    def forward(self, images: torch.Tensor):
        x = F.leaky_relu(self.trunk(self.from_rgb(images)), 0.2)
        pooled = x.sum(dim=(2, 3))
        return self.realness(pooled).squeeze(1), self.hair(pooled), self.eyes(x.flatten(1))
