"""TwinGAN: one shared encoder, one generator whose batch-norm scale and shift pick the output domain.

After Li, "TwinGAN: Cross-Domain Translation of Human Portraits" (2018): the encoder mirrors a
PGGAN-style generator (two 3×3 convolutions per resolution, halving down to 4×4), U-Net skips
carry encoder features to the generator at the same resolution, and every batch norm in the
generator has a scale and shift (and running statistics) per domain. Switching the domain index
turns the same code into a human face or an anime face. One spectral-norm discriminator per domain,
and for training with pretrained features a `FeatureCritic` per domain beside it.

Domains: 0 = human, 1 = anime. Images are (N, 3, R, R) in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn.utils import spectral_norm

HUMAN, ANIME = 0, 1


def _widths(resolution: int, width: int, max_width: int) -> dict[int, int]:
    """Channels per resolution, doubling as the resolution halves: {128: 16, 64: 32, …, 4: 256}."""
    widths, res, channels = {}, resolution, width
    while res >= 4:
        widths[res] = min(channels, max_width)
        res, channels = res // 2, channels * 2
    return widths


class DomainNorm(nn.Module):
    """Batch norm whose scale, shift and running statistics are chosen per output domain: the switch.

    Training normalises each batch by itself and inference by the running estimates, so the critics
    judge outputs made one way and the model ships making them another, unless the trainer freezes
    the statistics (`--freeze-norm-statistics`: these modules stay in eval mode and training uses
    the estimates).
    """

    def __init__(self, channels: int, domains: int = 2):
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels, affine=False) for _ in range(domains))
        self.scale = nn.Parameter(torch.ones(domains, channels))
        self.shift = nn.Parameter(torch.zeros(domains, channels))

    def forward(self, x: torch.Tensor, domain) -> torch.Tensor:
        """`domain` is an index, or a float t in [0, 1]: the two domains' outputs mixed (1 - t) : t.

        A whole float (0.0, 1.0) is that domain's index: exact, and no second norm to compute.
        """
        if isinstance(domain, float) and not domain.is_integer():
            if self.training:  # one batch would update both domains' running statistics
                raise ValueError("a blended domain is for inference: call .eval() first")
            return torch.lerp(self(x, 0), self(x, 1), domain)
        domain = int(domain)
        x = self.norms[domain](x)
        return x * self.scale[domain].view(1, -1, 1, 1) + self.shift[domain].view(1, -1, 1, 1)


class EncoderBlock(nn.Module):
    """Two 3×3 convolutions at one resolution, then halve it (the mirror of a PGGAN block).

    The first convolution's output is the skip handed to the generator at this resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        skip = F.leaky_relu(self.conv1(x), 0.2)
        return skip, F.avg_pool2d(F.leaky_relu(self.conv2(skip), 0.2), 2)


class GeneratorBlock(nn.Module):
    """Double the resolution, join the encoder's skip features, two 3×3 convolutions with domain norm."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, domains: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1)
        self.norm1 = DomainNorm(out_channels, domains)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.norm2 = DomainNorm(out_channels, domains)

    def forward(self, x, skip, domain):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], 1)
        x = F.leaky_relu(self.norm1(self.conv1(x), domain), 0.2)
        return F.leaky_relu(self.norm2(self.conv2(x), domain), 0.2)


class TwinGAN(nn.Module, PyTorchModelHubMixin):
    """Shared encoder + domain-switched generator; `forward(images, domain)` translates into `domain`.

    `norm` is in every saved config.json, the shipped one's included, from when the switch could be
    something other than batch norm; the per-image and demodulated switches lost
    (docs/twingan-experiments.md), so a config naming one is refused rather than half-loaded.
    """

    def __init__(self, resolution: int = 128, width: int = 16, max_width: int = 256, skip_resolutions=(8, 16, 32), domains: int = 2,
                 norm: str = "batch"):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError("resolution must be a power of two ≥ 8")
        if norm != "batch":
            raise ValueError(f"the domain switch is batch norm; norm={norm!r} is no longer built")
        self.resolution = resolution
        self.skip_resolutions = tuple(skip_resolutions)
        widths = _widths(resolution, width, max_width)
        self.embedding_size = widths[4]

        self.from_rgb = nn.Conv2d(3, widths[resolution], 1)
        self.encoder = nn.ModuleDict()
        res = resolution
        while res > 4:
            self.encoder[str(res)] = EncoderBlock(widths[res], widths[res // 2])
            res //= 2
        self.bottleneck = nn.Conv2d(widths[4], widths[4], 3, padding=1)

        self.start = nn.Conv2d(widths[4], widths[4], 3, padding=1)
        self.start_norm = DomainNorm(widths[4], domains)
        self.generator = nn.ModuleDict()
        res = 8
        while res <= resolution:
            skip = widths[res] if res in self.skip_resolutions else 0
            self.generator[str(res)] = GeneratorBlock(widths[res // 2], skip, widths[res], domains)
            res *= 2
        self.to_rgb = nn.Conv2d(widths[resolution], 3, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # He init for leaky ReLU keeps activations at unit scale through the 12-layer encoder;
                # torch's default shrinks them about 3× per layer, leaving a near-constant bottleneck.
                nn.init.kaiming_normal_(module.weight, a=0.2)
                nn.init.zeros_(module.bias)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The shared code: a 4×4 bottleneck and the skip features the generator reuses."""
        if images.shape[-1] != self.resolution or images.shape[-2] != self.resolution:
            raise ValueError(f"TwinGAN expects {self.resolution}×{self.resolution} images, got {tuple(images.shape[-2:])}")
        x = F.leaky_relu(self.from_rgb(images), 0.2)
        skips = {}
        for res, block in self.encoder.items():
            skip, x = block(x)
            if int(res) in self.skip_resolutions:
                skips[int(res)] = skip
        return self.bottleneck(x), skips  # linear: a code centred near zero, good for cosine search

    def decode(self, code: torch.Tensor, skips: dict[int, torch.Tensor], domain: int | float) -> torch.Tensor:
        x = F.leaky_relu(self.start_norm(self.start(code), domain), 0.2)
        for res, block in self.generator.items():
            x = block(x, skips.get(int(res)), domain)
        return torch.tanh(self.to_rgb(x))

    def forward(self, images: torch.Tensor, domain):
        """Translate into `domain`; a list of domains gives a list of outputs from one shared encoding.

        A float domain t in [0, 1] blends the switch itself, human (0) to anime (1), layer by layer:
        the translation's strength.
        """
        code, skips = self.encode(images)
        if isinstance(domain, (int, float)):
            return self.decode(code, skips, domain)
        return [self.decode(code, skips, d) for d in domain]

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised mean-pooled bottleneck: where look-alikes are searched, for both domains."""
        code, _ = self.encode(images)
        return F.normalize(code.mean(dim=(2, 3)), dim=1)


class Discriminator(nn.Module):
    """Spectral-norm convolutional critic for one domain: one unbounded score per image, shape (N,)."""

    def __init__(self, resolution: int = 128, width: int = 16, max_width: int = 256):
        super().__init__()
        widths = _widths(resolution, width, max_width)
        layers = [spectral_norm(nn.Conv2d(3, widths[resolution], 3, padding=1)), nn.LeakyReLU(0.2)]
        res = resolution
        while res > 4:
            layers += [spectral_norm(nn.Conv2d(widths[res], widths[res // 2], 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            res //= 2
        layers += [spectral_norm(nn.Conv2d(widths[4], widths[4], 3, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Linear(widths[4] * 16, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(images).flatten(1)).squeeze(1)


class FeatureCritic(nn.Module):
    """One domain's critic on a frozen ImageNet network's activations, a vision-aided critic (Kumari
    et al. 2022; Projected GAN, Sauer et al. 2021, with the projection left out): a small
    spectral-norm head per layer scores each position of that layer's features.

    Pretrained features already tell strokes, flat fills and skin apart, so the heads learn what
    marks a fake from few images and few steps, where a critic trained from pixels must first learn
    its own features. The frozen network is the caller's, shared by both domains' critics and kept
    out of their state. `forward` takes the activations, shallowest first, and returns one (N, H, W)
    score map per layer.
    """

    def __init__(self, channels: Sequence[int], width: int = 64):
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(spectral_norm(nn.Conv2d(c, width, 3, padding=1)), nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(width, 1, 1)))
            for c in channels
        )

    def forward(self, activations: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [head(x).squeeze(1) for head, x in zip(self.heads, activations)]
