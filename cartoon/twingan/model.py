"""TwinGAN: one shared encoder, one generator whose batch-norm scale and shift pick the output domain.

After Li, "TwinGAN: Cross-Domain Translation of Human Portraits" (2018): the encoder mirrors a
PGGAN-style generator (two 3×3 convolutions per resolution, halving down to 4×4), U-Net skips
carry encoder features to the generator at the same resolution, and every batch norm in the
generator has a scale and shift (and running statistics) per domain. Switching the domain index
turns the same code into a human face or an anime face. One spectral-norm discriminator per domain
(or one per scale, `MultiScaleCritic`).

With `colour_classes=(hair, eyes)` the anime side is conditioned on hair and eye colour, as the
seed's TwinGAN was on its tagger's tags: every switch adds to the anime domain's scale and shift a
learned per-colour offset (conditional normalisation, `ColourOffsets`), zero at the start, so a
conditioned model begins as the unconditioned one. The human side takes no colours.

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
# Encoder resolutions whose features the generator is handed (U-Net skips), as every model shipped so far.
SKIP_RESOLUTIONS = (8, 16, 32)
# The last commit that still builds the 64² arms' AdaLIN switch and CAM attention, which lost (docs/twingan-experiments.md).
LAST_WITH_ADALIN_AND_CAM = "81f239b"
# The last commit that still builds the frozen VGG16 encoder, whose 64² arm lost (docs/twingan-experiments.md).
LAST_WITH_VGG_ENCODER = "3e2987d"


def _widths(resolution: int, width: int, max_width: int) -> dict[int, int]:
    """Channels per resolution, doubling as the resolution halves: {128: 16, 64: 32, …, 4: 256}."""
    widths, res, channels = {}, resolution, width
    while res >= 4:
        widths[res] = min(channels, max_width)
        res, channels = res // 2, channels * 2
    return widths


def is_blend(domain) -> bool:
    """A float domain strictly between the two: both domains' outputs mixed. A whole float (0.0, 1.0) is that index."""
    return isinstance(domain, float) and not domain.is_integer()


class ColourOffsets(nn.Module):
    """Per hair colour and per eye colour, an offset to one switch's anime scale and shift (the two added).

    Zero-initialised: a conditioned model starts as the unconditioned one and learns what each colour changes.
    One index past each attribute's colours is "keep": no offset (a fixed zero row), the translation's own
    colour, which training asks for too.
    """

    def __init__(self, channels: int, hair_classes: int, eye_classes: int):
        super().__init__()
        self.hair = nn.Embedding(hair_classes + 1, 2 * channels, padding_idx=hair_classes)
        self.eyes = nn.Embedding(eye_classes + 1, 2 * channels, padding_idx=eye_classes)
        nn.init.zeros_(self.hair.weight)
        nn.init.zeros_(self.eyes.weight)

    def forward(self, colours: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(hair, eyes) class indices (or "keep"), each (N,) or (1,) → scale and shift offsets, each (N, C, 1, 1)."""
        hair, eyes = colours
        offsets = (self.hair(hair) + self.eyes(eyes))[:, :, None, None]
        return offsets.chunk(2, 1)


class DomainNorm(nn.Module):
    """Batch norm with running statistics per output domain, then a scale and shift chosen per domain: the switch.

    With `colour_classes` the anime domain's scale and shift also depend on the colours asked for.
    Training normalises each batch by itself and inference by the running estimates, so the critics
    judge outputs made one way and the model ships making them another, unless the trainer freezes
    the statistics (`--freeze-norm-statistics`: these modules stay in eval mode and training uses
    the estimates).
    """

    def __init__(self, channels: int, domains: int = 2, colour_classes: Sequence[int] | None = None):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(domains, channels))
        self.shift = nn.Parameter(torch.zeros(domains, channels))
        self.colours = ColourOffsets(channels, *colour_classes) if colour_classes else None
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels, affine=False) for _ in range(domains))

    def forward(self, x: torch.Tensor, domain, colours=None) -> torch.Tensor:
        """`domain` is an index, or a float t in [0, 1]: the two domains' outputs mixed (1 - t) : t.

        A whole float (0.0, 1.0) is that domain's index: exact, and no second norm to compute.
        `colours` (hair, eyes) index tensors condition the anime domain of a colour-conditioned switch.
        """
        if is_blend(domain):
            if self.training:  # one batch would update both domains' running statistics
                raise ValueError("a blended domain is for inference: call .eval() first")
            return torch.lerp(self(x, 0), self(x, 1, colours), domain)
        domain = int(domain)
        scale, shift = self.scale[domain].view(1, -1, 1, 1), self.shift[domain].view(1, -1, 1, 1)
        if domain == ANIME and self.colours is not None and colours is not None:
            scale_offset, shift_offset = self.colours(colours)
            scale, shift = scale + scale_offset, shift + shift_offset
        return self.norms[domain](x) * scale + shift


def removed_switch(norm: str = "batch", attention: str | None = None, encoder: str = "own") -> str | None:
    """Why a saved config's domain switch, attention or encoder is not built (None: it is, per-domain batch
    norm without attention, with the encoder trained from the pixels). The others lost and were removed, so
    a config naming one is refused rather than half-loaded."""
    if encoder != "own":
        return (f"encoder={encoder!r} was saved by a TwinGAN design that lost and was removed: only the encoder "
                f"trained from the pixels is built now (docs/twingan-experiments.md; commit {LAST_WITH_VGG_ENCODER} "
                "still builds the frozen VGG16 encoder)")
    if norm == "batch" and attention is None:
        return None
    named = f"norm={norm!r}" if norm != "batch" else f"attention={attention!r}"
    return (f"{named} was saved by a TwinGAN design that lost and was removed: only per-domain batch norm without "
            f"attention is built now (docs/twingan-experiments.md; commit {LAST_WITH_ADALIN_AND_CAM} still builds AdaLIN "
            f"and CAM, 39e6b49 the older switches)")


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


class DomainSkip(nn.Module):
    """The encoder's skip features seen through a 1×1 convolution per output domain, identity at the start.

    With shared convolutions after the skip, the anime side can only rescale the photo's features channel by
    channel (the norm's switch), so the photo's eyes and texture come through under the drawn ones; its own
    mixing lets it choose what of the photo it keeps. A float domain mixes the two views as the norms do.
    """

    def __init__(self, channels: int, domains: int):
        super().__init__()
        self.views = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(domains))
        self.reset_to_identity()

    def reset_to_identity(self) -> None:
        for view in self.views:
            nn.init.eye_(view.weight[:, :, 0, 0])
            nn.init.zeros_(view.bias)

    def forward(self, skip: torch.Tensor, domain) -> torch.Tensor:
        if is_blend(domain):
            return torch.lerp(self.views[HUMAN](skip), self.views[ANIME](skip), domain)
        return self.views[int(domain)](skip)


class GeneratorBlock(nn.Module):
    """Double the resolution, join the encoder's skip features, two 3×3 convolutions with domain norm.

    With `domain_skips` each domain reads the skip through its own 1×1 convolution (`DomainSkip`)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, domains: int, colour_classes: Sequence[int] | None = None,
                 domain_skips: bool = False):
        super().__init__()
        self.skip_view = DomainSkip(skip_channels, domains) if domain_skips and skip_channels else None
        self.conv1 = nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1)
        self.norm1 = DomainNorm(out_channels, domains, colour_classes)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.norm2 = DomainNorm(out_channels, domains, colour_classes)

    def forward(self, x, skip, domain, colours=None):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = torch.cat([x, self.skip_view(skip, domain) if self.skip_view is not None else skip], 1)
        x = F.leaky_relu(self.norm1(self.conv1(x), domain, colours), 0.2)
        return F.leaky_relu(self.norm2(self.conv2(x), domain, colours), 0.2)


class TwinGAN(nn.Module, PyTorchModelHubMixin):
    """Shared encoder + domain-switched generator; `forward(images, domain)` translates into `domain`.

    `norm` and `attention` are in saved configs from when the switch had rivals: "batch" and None are
    built, and a config naming a removed design is refused (`removed_switch`).
    `colour_classes=(hair, eyes)` conditions the anime side on colour indices (None: unconditioned, as shipped).
    `encoder` names the encoder trained from the pixels, "own", the only one built since the frozen VGG16
    encoder lost; saved configs record it, and one naming the VGG16 encoder is refused.
    `domain_skips` gives each domain its own 1×1 view of the skips (`DomainSkip`; off in every model shipped so far).
    """

    def __init__(self, resolution: int = 128, width: int = 16, max_width: int = 256, skip_resolutions=SKIP_RESOLUTIONS, domains: int = 2,
                 norm: str = "batch", attention: str | None = None, colour_classes: Sequence[int] | None = None, encoder: str = "own",
                 domain_skips: bool = False):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError("resolution must be a power of two ≥ 8")
        if reason := removed_switch(norm, attention, encoder):
            raise ValueError(reason)
        self.resolution = resolution
        self.colour_classes = tuple(colour_classes) if colour_classes else None  # a saved config.json holds a list
        self.skip_resolutions = tuple(skip_resolutions)
        self.domain_skips = domain_skips
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
        self.start_norm = DomainNorm(widths[4], domains, self.colour_classes)
        self.generator = nn.ModuleDict()
        res = 8
        while res <= resolution:
            skip = widths[res] if res in self.skip_resolutions else 0
            self.generator[str(res)] = GeneratorBlock(widths[res // 2], skip, widths[res], domains, self.colour_classes, domain_skips)
            res *= 2
        self.to_rgb = nn.Conv2d(widths[resolution], 3, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # He init for leaky ReLU keeps activations at unit scale through the 12-layer encoder;
                # torch's default shrinks them about 3× per layer, leaving a near-constant bottleneck.
                nn.init.kaiming_normal_(module.weight, a=0.2)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, DomainSkip):  # the He init above is not where a skip's view starts
                module.reset_to_identity()

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The shared code: a 4×4 bottleneck and the skip features the generator reuses."""
        if images.shape[-1] != self.resolution or images.shape[-2] != self.resolution:
            raise ValueError(f"TwinGAN expects {self.resolution}×{self.resolution} images, got {tuple(images.shape[-2:])}")
        x, skips = F.leaky_relu(self.from_rgb(images), 0.2), {}
        for res, block in self.encoder.items():
            skip, x = block(x)
            if int(res) in self.skip_resolutions:
                skips[int(res)] = skip
        return self.bottleneck(x), skips  # linear: a code centred near zero, good for cosine search

    def decode(self, code: torch.Tensor, skips: dict[int, torch.Tensor], domain: int | float, colours=None):
        x = F.leaky_relu(self.start_norm(self.start(code), domain, colours), 0.2)
        for res, block in self.generator.items():
            x = block(x, skips.get(int(res)), domain, colours)
        return torch.tanh(self.to_rgb(x))

    def forward(self, images: torch.Tensor, domain, colours=None):
        """Translate into `domain`; a list of domains gives a list of outputs from one shared encoding.

        A float domain t in [0, 1] blends the switch itself, human (0) to anime (1), layer by layer:
        the translation's strength. `colours`, (hair, eyes) class-index tensors of shape (N,) or (1,),
        is the anime side's colour request for a colour-conditioned model; without one, every colour is
        kept (no offsets).
        """
        code, skips = self.encode(images)
        if isinstance(domain, (int, float)):
            return self.decode(code, skips, domain, colours)
        return [self.decode(code, skips, d, colours) for d in domain]

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


class MultiScaleCritic(nn.Module):
    """pix2pixHD's multi-scale critic: the same critic design at 1×, ½×, … of the image, each its own
    weights; the coarse ones see whole-face layout, the full-size one strokes. Scores (N, scales)."""

    def __init__(self, resolution: int = 128, width: int = 16, max_width: int = 256, scales: int = 2):
        super().__init__()
        if resolution >> (scales - 1) < 8:
            raise ValueError(f"{scales} scales of a {resolution}² image go below 8²")
        self.critics = nn.ModuleList(Discriminator(resolution >> i, width, max_width) for i in range(scales))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([critic(F.avg_pool2d(images, 2**i) if i else images) for i, critic in enumerate(self.critics)], 1)
