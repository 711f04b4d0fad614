"""TwinGAN: one shared encoder, one generator whose batch-norm scale and shift pick the output domain.

After Li, "TwinGAN: Cross-Domain Translation of Human Portraits" (2018): the encoder mirrors a
PGGAN-style generator (two 3×3 convolutions per resolution, halving down to 4×4), U-Net skips
carry encoder features to the generator at the same resolution, and every batch norm in the
generator has a scale and shift (and running statistics) per domain. Switching the domain index
turns the same code into a human face or an anime face. One spectral-norm discriminator per domain,
and for training with pretrained features a `FeatureCritic` per domain beside it.
`norm="layer-instance"` keeps the per-domain scale and shift but normalises each image by itself
(`DomainNorm`), so a model translates at inference exactly as its critics saw it in training.
`norm="demodulated"` does without activation statistics altogether: each generator convolution
has a style per domain and demodulated weights (`ModulatedConv2d`, after StyleGAN2).

Domains: 0 = human, 1 = anime. Images are (N, 3, R, R) in [-1, 1].
"""

from __future__ import annotations

import math
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
    """A normalisation whose scale and shift are chosen per output domain: the switch.

    "batch" is TwinGAN's: batch norm with running statistics per domain. Training normalises each
    batch by itself and inference by the running estimates, so the critics judge outputs made one
    way and the model ships making them another, unless the trainer freezes the statistics
    (`--freeze-norm-statistics`: these modules stay in eval mode and training uses the estimates).
    "layer-instance" normalises each image by itself, the same in training and inference: a
    per-domain, per-channel learned mix of instance norm (drops each channel's mean, so the domain
    sets it) and layer norm (keeps the channels' relative means), as U-GAT-IT's LIN.
    """

    STATISTICS = ("batch", "layer-instance")

    def __init__(self, channels: int, domains: int = 2, statistics: str = "batch"):
        super().__init__()
        if statistics not in self.STATISTICS:
            raise ValueError(f"statistics must be one of {self.STATISTICS}, got {statistics!r}")
        self.statistics = statistics
        if statistics == "batch":
            self.norms = nn.ModuleList(nn.BatchNorm2d(channels, affine=False) for _ in range(domains))
        else:
            # The instance norm's share of the mix, as a logit: it starts half and half.
            self.instance_logit = nn.Parameter(torch.zeros(domains, channels))
        self.scale = nn.Parameter(torch.ones(domains, channels))
        self.shift = nn.Parameter(torch.zeros(domains, channels))

    def normalise(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        if self.statistics == "batch":
            return self.norms[domain](x)
        instance_share = torch.sigmoid(self.instance_logit[domain]).view(1, -1, 1, 1)
        # the lerp written out: torch.lerp takes one dtype, and under autocast the share and the two norms'
        # outputs need not share one
        layer = F.layer_norm(x, x.shape[1:])
        return layer + instance_share * (F.instance_norm(x) - layer)

    def forward(self, x: torch.Tensor, domain) -> torch.Tensor:
        """`domain` is an index, or a float t in [0, 1]: the two domains' outputs mixed (1 - t) : t.

        A whole float (0.0, 1.0) is that domain's index: exact, and no second norm to compute.
        """
        if isinstance(domain, float) and not domain.is_integer():
            if self.training and self.statistics == "batch":  # one batch would update both domains' running statistics
                raise ValueError("a blended domain is for inference: call .eval() first")
            return torch.lerp(self(x, 0), self(x, 1), domain)
        domain = int(domain)
        x = self.normalise(x, domain)
        return x * self.scale[domain].view(1, -1, 1, 1) + self.shift[domain].view(1, -1, 1, 1)


class ModulatedConv2d(nn.Module):
    """A 3×3 convolution whose input channels are scaled by a learned style per domain, its weights
    then demodulated (StyleGAN2, Karras et al. 2020): each output channel's modulated weights are
    rescaled to unit norm, so the style sets how channels are weighed and never the output's scale.

    The domain switch with no statistics of activations: unlike batch norm it computes the same in
    training and at inference, and unlike per-image norms it leaves each image's own statistics
    alone (StyleGAN2 traces its droplet artefacts to instance norm).
    """

    # All but the first layer's inputs come through a leaky ReLU, which keeps (1 + 0.2²) / 2 of a unit signal's power.
    GAIN = math.sqrt(2 / (1 + 0.2 ** 2))

    def __init__(self, in_channels: int, out_channels: int, domains: int = 2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.style = nn.Parameter(torch.ones(domains, in_channels))
        self.bias = nn.Parameter(torch.zeros(domains, out_channels))

    def forward(self, x: torch.Tensor, domain) -> torch.Tensor:
        """`domain` is an index, or a float t in [0, 1] that mixes the two domains' styles (1 - t) : t."""
        if isinstance(domain, float):
            style, bias = torch.lerp(self.style[0], self.style[1], domain), torch.lerp(self.bias[0], self.bias[1], domain)
        else:
            style, bias = self.style[domain], self.bias[domain]
        weight = self.weight * style.view(1, -1, 1, 1)
        weight = weight * (self.GAIN * torch.rsqrt(weight.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8))
        return F.conv2d(x, weight, bias, padding=1)


def domain_conv(in_channels: int, out_channels: int, domains: int, norm: str) -> tuple[nn.Module, nn.Module | None]:
    """A generator convolution and the domain norm after it; a modulated convolution is its own switch."""
    if norm == "demodulated":
        return ModulatedConv2d(in_channels, out_channels, domains), None
    return nn.Conv2d(in_channels, out_channels, 3, padding=1), DomainNorm(out_channels, domains, norm)


def apply_domain_conv(conv: nn.Module, norm: nn.Module | None, x: torch.Tensor, domain) -> torch.Tensor:
    return conv(x, domain) if norm is None else norm(conv(x), domain)


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

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, domains: int, norm: str):
        super().__init__()
        self.conv1, self.norm1 = domain_conv(in_channels + skip_channels, out_channels, domains, norm)
        self.conv2, self.norm2 = domain_conv(out_channels, out_channels, domains, norm)

    def forward(self, x, skip, domain):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], 1)
        x = F.leaky_relu(apply_domain_conv(self.conv1, self.norm1, x, domain), 0.2)
        return F.leaky_relu(apply_domain_conv(self.conv2, self.norm2, x, domain), 0.2)


class TwinGAN(nn.Module, PyTorchModelHubMixin):
    """Shared encoder + domain-switched generator; `forward(images, domain)` translates into `domain`."""

    NORMS = DomainNorm.STATISTICS + ("demodulated",)

    def __init__(self, resolution: int = 128, width: int = 16, max_width: int = 256, skip_resolutions=(8, 16, 32), domains: int = 2,
                 norm: str = "batch"):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError("resolution must be a power of two ≥ 8")
        if norm not in self.NORMS:
            raise ValueError(f"norm must be one of {self.NORMS}, got {norm!r}")
        self.resolution, self.norm = resolution, norm
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

        self.start, self.start_norm = domain_conv(widths[4], widths[4], domains, norm)
        self.generator = nn.ModuleDict()
        res = 8
        while res <= resolution:
            skip = widths[res] if res in self.skip_resolutions else 0
            self.generator[str(res)] = GeneratorBlock(widths[res // 2], skip, widths[res], domains, norm)
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
        x = F.leaky_relu(apply_domain_conv(self.start, self.start_norm, code, domain), 0.2)
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


@torch.no_grad()
def widen(narrow: TwinGAN, wide: TwinGAN, seed: int = 0) -> TwinGAN:
    """Load `narrow` into `wide`, a TwinGAN with twice the channels at every resolution, so that
    `wide` computes the same translations (Net2WiderNet, Chen et al. 2016): more capacity to train
    on without starting over.

    Channel c of `narrow` becomes channels 2c and 2c + 1 of `wide`, so concatenated skips keep their
    order. A layer reading a duplicated pair splits each weight between the two at a random ratio;
    the sum is unchanged, and the twins get different gradients, so they do not stay copies.
    """
    if narrow.norm == "demodulated":  # a split weight changes the norms that demodulation divides by
        raise ValueError("widening keeps the translation only for normalised activations, not demodulated weights")
    generator = torch.Generator().manual_seed(seed)
    narrow_state = narrow.state_dict()
    wide_state = {}
    for name, target in wide.state_dict().items():
        source = narrow_state[name]
        for dim, (old, new) in enumerate(zip(source.shape, target.shape)):
            if new == 2 * old:
                source = source.repeat_interleave(2, dim=dim)
            elif new != old:
                raise ValueError(f"{name}: {tuple(target.shape)} is not {tuple(narrow_state[name].shape)} widened twice")
        if source.dim() == 4 and target.shape[1] == 2 * narrow_state[name].shape[1]:
            share = torch.rand(source[:, ::2].shape, generator=generator) * 0.5 + 0.25
            source = source.clone()
            source[:, ::2] *= share
            source[:, 1::2] *= 1 - share
        wide_state[name] = source
    wide.load_state_dict(wide_state)
    return wide


class Discriminator(nn.Module):
    """Spectral-norm convolutional critic for one domain: one unbounded score per image, and with
    `patch_resolution` also one per patch, read off the trunk's features at that resolution.

    The patch head is a local critic beside the global one (U-GAT-IT's pair, sharing one trunk):
    at 16² of a 128² image each score sees a 24-pixel patch, so texture is judged region by region.
    `forward` returns the list of score tensors, global first: (N,) and then (N, R, R).
    """

    def __init__(self, resolution: int = 128, width: int = 16, max_width: int = 256, patch_resolution: int | None = None):
        super().__init__()
        widths = _widths(resolution, width, max_width)
        if patch_resolution is not None and patch_resolution not in widths:
            raise ValueError(f"patch_resolution must be one of {sorted(widths)}, got {patch_resolution}")
        layers = [spectral_norm(nn.Conv2d(3, widths[resolution], 3, padding=1)), nn.LeakyReLU(0.2)]
        sides = [resolution] * 2  # each layer's output side
        res = resolution
        while res > 4:
            layers += [spectral_norm(nn.Conv2d(widths[res], widths[res // 2], 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            res //= 2
            sides += [res] * 2
        layers += [spectral_norm(nn.Conv2d(widths[4], widths[4], 3, padding=1)), nn.LeakyReLU(0.2)]
        sides += [4] * 2
        # the patch head reads the last features at its resolution (layers counted from 1)
        self.patch_layer = len(sides) - sides[::-1].index(patch_resolution) if patch_resolution else None
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Linear(widths[4] * 16, 1))
        self.patch_score = spectral_norm(nn.Conv2d(widths[patch_resolution], 1, 1)) if patch_resolution else None

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        scores, x = [], images
        for index, layer in enumerate(self.features, 1):
            x = layer(x)
            if index == self.patch_layer:
                scores.append(self.patch_score(x).squeeze(1))
        return [self.score(x.flatten(1)).squeeze(1)] + scores


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
