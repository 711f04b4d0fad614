"""A style-based generator for 64×64 anime faces (StyleGAN2, Karras et al. 2020), sized for a CPU.

z → mapping network (pixel norm, equalized-lr MLP) → w. A learned 4×4 constant is refined by
blocks of modulated 3×3 convolutions — each input channel scaled by a style computed from w,
each output demodulated back to unit variance — with per-pixel noise of learned strength after
every conv. Every block adds its own RGB to the upsampled RGB of the blocks before it (skips).
Upsampling is a transposed conv followed by the [1, 3, 3, 1] blur written as a depthwise conv,
which this CPU runs about 6× faster than a generic up-fir-down.

Styles: conv i reads style i, and a block's RGB layer reads the style after its last conv, so a
64² generator takes `num_ws` = 10 of them. Style mixing switches to a second w from a crossover
index on: low indices set the coarse layout (pose, face shape), high ones colour and texture.
Block k works at 4·2^k pixels; `synthesis` can return any block's input (`features`) and add a
spatially masked offset to chosen channels of it (`FeatureEdit`), for feature-map views and edits.

Colour conditioning (`hair_classes`, `eye_classes` > 0), StyleGAN2-ADA's way: the hair and eye
one-hots, side by side, are embedded by a linear layer, normalised like z and joined with z at
the mapping network's input. The first mapping layer's weights on the embedding start at zero,
so a conditional generator loaded with unconditional weights draws exactly the same faces until
training teaches it colours. Truncation pulls toward the mean w of the faces' colour pair
(`pair_w_avg`, measured by `measure_pair_w_avg`), which keeps the colour a plain mean w loses.
With `colour_styles` = k, the colours also reach the last k styles directly, as an offset each
hair and each eye colour adds to them (zero at first, so older weights draw the same faces): a
condition that enters only the mapping can be overridden by z, and some z's then draw light hair
whatever colour is asked. Truncation leaves the offsets whole.
The critic (`cartoon.stylegan.critic`) is trained beside it and never shipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from cartoon.runtime import PRECISIONS

ACTIVATION_GAIN = math.sqrt(2)  # keeps a leaky ReLU's output variance near its input's
# what the colour condition adds to the state dicts: absent from unconditional weights
CONDITION_PARTS = ("mapping.embed.", "mapping.condition_in.", "pair_w_avg", "hair.", "eyes.", "colour_styles")


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * ACTIVATION_GAIN


class EqualLinear(nn.Module):
    """Linear layer with weights stored at unit scale and scaled at run time (equalized learning rate).

    `lr_mul` < 1 slows a layer down for Adam: the mapping network learns 100× slower than the rest."""

    def __init__(self, features_in: int, features_out: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features_out, features_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((features_out,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(features_in), lr_mul, activate

    def forward(self, x, offset: torch.Tensor | None = None):
        """`offset` is added before the activation: another input's share of the same layer."""
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        if offset is not None:
            x = x + offset
        return leaky(x) if self.activate else x


class EqualConv(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, kernel: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels_out, channels_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(channels_out)) if bias else None
        self.scale = 1 / math.sqrt(channels_in * kernel * kernel)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)


def blur_kernel(channels: int, gain: float) -> torch.Tensor:
    """The separable [1, 3, 3, 1] low-pass filter, one copy per channel for a depthwise conv."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps)
    return (kernel / kernel.sum() * gain).expand(channels, 1, 4, 4).clone()


class Blur(nn.Module):
    """Depthwise 4×4 blur. After a stride-2 transposed conv it has gain 4: three in four of the
    upsampled grid's samples are zeros."""

    def __init__(self, channels: int, gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", blur_kernel(channels, gain), persistent=False)

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1)), self.kernel.to(x.dtype), groups=x.shape[1])


class UpsampleRGB(nn.Module):
    """×2 upsampling of the RGB skip: zero insertion and the blur in one depthwise transposed conv."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.register_buffer("kernel", blur_kernel(channels, gain=4.0), persistent=False)

    def forward(self, x):
        return F.conv_transpose2d(x, self.kernel.to(x.dtype), stride=2, padding=1, groups=x.shape[1])


class ModulatedConv(nn.Module):
    """A conv whose input channels are scaled per sample by a style, its outputs demodulated.

    Scaling the activations rather than the weights is the same arithmetic (StyleGAN2's unfused
    path) and keeps one weight for the whole batch: plain convs, no grouped conv per sample.
    """

    def __init__(self, channels_in: int, channels_out: int, style_dim: int, kernel: int = 3, upsample: bool = False,
                 demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels_out, channels_in, kernel, kernel))
        self.scale = 1 / math.sqrt(channels_in * kernel * kernel)
        self.style = EqualLinear(style_dim, channels_in, bias_init=1.0)  # styles start at 1: plain convs
        self.blur = Blur(channels_out, gain=4.0) if upsample else None
        self.demodulate = demodulate

    def forward(self, x, w):
        style = self.style(w)
        weight = self.weight * self.scale
        x = x * style[:, :, None, None].to(x.dtype)
        if self.blur is not None:
            x = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            # each output's weight norm once the inputs are scaled by the style
            norm = style.square() @ weight.square().sum((2, 3)).t()
            x = x * torch.rsqrt(norm + 1e-8)[:, :, None, None].to(x.dtype)
        return x


class StyledConv(nn.Module):
    """Modulated conv, then noise scaled by a learned strength, then bias and leaky ReLU."""

    def __init__(self, channels_in: int, channels_out: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv(channels_in, channels_out, style_dim, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(channels_out))

    def forward(self, x, w, noise):
        x = self.conv(x, w)
        return leaky(x + self.noise_strength * noise.to(x.dtype) + self.bias[None, :, None, None].to(x.dtype))


class ToRGB(nn.Module):
    def __init__(self, channels_in: int, style_dim: int, upsample: bool):
        super().__init__()
        self.conv = ModulatedConv(channels_in, 3, style_dim, kernel=1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))
        self.upsample = UpsampleRGB() if upsample else None

    def forward(self, x, w, skip=None):
        rgb = self.conv(x, w)
        rgb = rgb + self.bias[None, :, None, None].to(rgb.dtype)
        return rgb if skip is None else rgb + self.upsample(skip)


class SynthesisBlock(nn.Module):
    """One resolution: (×2 upsampling conv and) a conv, then the block's RGB added to the skip."""

    def __init__(self, channels_in: int, channels_out: int, style_dim: int, first: bool):
        super().__init__()
        self.convs = nn.ModuleList(
            [StyledConv(channels_in, channels_out, style_dim)] if first
            else [StyledConv(channels_in, channels_out, style_dim, upsample=True), StyledConv(channels_out, channels_out, style_dim)]
        )
        self.to_rgb = ToRGB(channels_out, style_dim, upsample=not first)

    def forward(self, x, rgb, ws, noises):
        """`ws`: (N, len(convs) + 1, D), one style per conv and the RGB layer's; `noises`: one per conv."""
        for i, (conv, noise) in enumerate(zip(self.convs, noises)):
            x = conv(x, ws[:, i], noise)
        return x, self.to_rgb(x, ws[:, len(self.convs)], rgb)


@dataclass(frozen=True)
class FeatureEdit:
    """Add `amount * weights[i] * mask` to channel `channels[i]` of block `block`'s input.

    `mask` is (H, W), 1 where the edit applies; any size, resized (nearest) to the block's input.
    """

    block: int
    channels: Sequence[int]
    weights: Sequence[float]
    mask: torch.Tensor
    amount: float = 1.0

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.channels) != len(self.weights):
            raise ValueError(f"an edit needs one weight per channel, not {len(self.weights)} for {len(self.channels)}")
        if any(not 0 <= c < x.shape[1] for c in self.channels):
            raise ValueError(f"block {self.block}'s input has channels 0–{x.shape[1] - 1}, not {list(self.channels)}")
        offset = torch.zeros(x.shape[1], device=x.device)
        offset[list(self.channels)] = torch.as_tensor(self.weights, dtype=offset.dtype, device=x.device) * self.amount
        mask = self.mask.to(x.device, torch.float32)
        if mask.shape[-2:] != x.shape[-2:]:
            mask = F.interpolate(mask.view(1, 1, *mask.shape[-2:]), size=x.shape[-2:], mode="nearest")[0, 0]
        return x + (offset[:, None, None] * mask).to(x.dtype)


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


class MappingNetwork(nn.Module):
    """z (and, with `condition_dim`, class weights) → w.

    The condition's share of the first layer, `condition_in`, is the block of a linear layer on
    [z, embedding] that reads the embedding; kept apart so unconditional weights load unchanged,
    and zero at first so that they also draw unchanged. It and the embedding learn at the full
    rate (StyleGAN2-ADA's embedding does): at the mapping's 1/100 a zero block would take tens
    of thousands of steps to matter.
    """

    def __init__(self, latent_dim: int, layers: int, lr_mul: float, condition_dim: int = 0):
        super().__init__()
        self.layers = nn.Sequential(*[EqualLinear(latent_dim, latent_dim, lr_mul=lr_mul, activate=True) for _ in range(layers)])
        if condition_dim:
            self.embed = EqualLinear(condition_dim, latent_dim)
            self.condition_in = EqualLinear(latent_dim, latent_dim)
            nn.init.zeros_(self.condition_in.weight)

    def forward(self, z, condition: torch.Tensor | None = None):
        if condition is None:
            return self.layers(pixel_norm(z))
        first = self.layers[0](pixel_norm(z), offset=self.condition_in(pixel_norm(self.embed(condition))))
        return self.layers[1:](first)


class Generator(nn.Module, PyTorchModelHubMixin):
    """z (N, latent_dim) → RGB faces (N, 3, resolution, resolution), roughly in [-1, 1].

    `forward` is the short road; `mapping` → `truncate` → `styles` → `synthesis` the long one,
    for interpolating, mixing and editing in w. A conditional generator (`hair_classes`,
    `eye_classes`) also takes `colours(hair, eyes)` in `mapping` and `truncate`.
    """

    def __init__(self, resolution: int = 64, latent_dim: int = 256, mapping_layers: int = 4, max_channels: int = 64,
                 channel_base: int = 4096, mapping_lr_mul: float = 0.01, noise_seed: int = 0, hair_classes: int = 0,
                 eye_classes: int = 0, render_precision: str = "fp32", colour_styles: int = 0):
        """`render_precision`: how the avatar sampler (`cartoon.acgan.render`) computes a conditional
        generator's faces, part of what its recipes' pixels are: "bf16" (autocast, channels-last;
        about twice as fast here) or "fp32". `colour_styles`: how many of the last styles a conditional
        generator's colours offset directly (0: the colours enter the mapping only)."""
        super().__init__()
        if (hair_classes > 0) != (eye_classes > 0):
            raise ValueError(f"a colour condition needs both hair and eye classes, not {hair_classes} and {eye_classes}")
        if render_precision not in PRECISIONS:
            raise ValueError(f"render_precision must be one of {', '.join(PRECISIONS)}, not {render_precision!r}")
        self.hair_classes, self.eye_classes, self.render_precision = hair_classes, eye_classes, render_precision
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two from 8, not {resolution}")
        self.latent_dim = latent_dim
        self.block_sizes = [4 * 2**k for k in range(int(math.log2(resolution)) - 1)]  # each block's output side
        channels = [min(max_channels, channel_base // size) for size in self.block_sizes]
        self.block_channels = [channels[0]] + channels[:-1]  # each block's input channels
        self.mapping = MappingNetwork(latent_dim, mapping_layers, mapping_lr_mul, hair_classes + eye_classes)
        self.constant = nn.Parameter(torch.randn(1, channels[0], 4, 4))
        self.blocks = nn.ModuleList(SynthesisBlock(c_in, c_out, latent_dim, first=k == 0)
                                    for k, (c_in, c_out) in enumerate(zip(self.block_channels, channels)))
        self.first_conv = [sum(len(b.convs) for b in self.blocks[:k]) for k in range(len(self.blocks))]
        self.num_convs = sum(len(b.convs) for b in self.blocks)
        self.num_ws = self.num_convs + 1
        if not 0 <= colour_styles <= (self.num_ws if self.conditional else 0):
            raise ValueError(f"colour_styles must be from 0 to {self.num_ws} for a conditional generator, 0 otherwise, not {colour_styles}")
        self.colour_styles = nn.Parameter(torch.zeros(colour_styles, hair_classes + eye_classes, latent_dim)) if colour_styles else None
        # the mean w that truncation pulls toward, tracked by the trainer (`track_w_avg`)
        self.register_buffer("w_avg", torch.zeros(latent_dim))
        if self.conditional:
            # the mean w of every (hair, eyes) pair, that conditional truncation pulls toward
            self.register_buffer("pair_w_avg", torch.zeros(hair_classes, eye_classes, latent_dim))
        # stored noise, part of the weights, so that fixed-noise faces are the same wherever they load
        rng = torch.Generator().manual_seed(noise_seed)
        for k, block in enumerate(self.blocks):
            for i in range(len(block.convs)):
                size = self.block_sizes[k]
                self.register_buffer(f"noise_{self.first_conv[k] + i}", torch.randn(1, 1, size, size, generator=rng))

    @property
    def conditional(self) -> bool:
        return self.hair_classes > 0

    def colours(self, hair: torch.Tensor, eyes: torch.Tensor) -> torch.Tensor:
        """The mapping's condition (N, hair_classes + eye_classes): hair and eye one-hots side by side.

        `hair`/`eyes` are class indices (N,) or class weights (N, classes); the embedding is linear,
        so blending weights blends the colour embedding."""
        if not self.conditional:
            raise ValueError("this generator has no colour condition")
        hair = F.one_hot(hair, self.hair_classes).float() if hair.dim() == 1 else hair.float()
        eyes = F.one_hot(eyes, self.eye_classes).float() if eyes.dim() == 1 else eyes.float()
        return torch.cat([hair, eyes], 1)

    @torch.no_grad()
    def track_w_avg(self, w: torch.Tensor, beta: float = 0.995):
        self.w_avg.lerp_(w.detach().float().mean(0), 1 - beta)

    @torch.no_grad()
    def measure_pair_w_avg(self, samples: int = 512, seed: int = 0, batch_size: int = 1024):
        """Set `pair_w_avg` to each (hair, eyes) pair's mean w over the same `samples` seeded z's."""
        z = torch.randn(samples, self.latent_dim, generator=torch.Generator().manual_seed(seed)).to(self.w_avg.device)
        for h in range(self.hair_classes):
            for e in range(self.eye_classes):
                colours = self.colours(torch.tensor([h]), torch.tensor([e])).to(z.device)
                ws = [self.mapping(chunk, colours.expand(len(chunk), -1)).float() for chunk in z.split(batch_size)]
                self.pair_w_avg[h, e] = torch.cat(ws).mean(0)

    def truncate(self, w: torch.Tensor, psi: float | torch.Tensor, colours: torch.Tensor | None = None) -> torch.Tensor:
        """w pulled toward the mean w: ψ = 1 leaves it, ψ = 0 gives every face the mean face.

        With `colours`, toward the mean w of their pair (blended weights blend the pairs' means);
        `psi` may then also be one value per face (N,)."""
        if colours is None:
            centre = self.w_avg.to(w.dtype)
        else:
            hair, eyes = colours[:, :self.hair_classes], colours[:, self.hair_classes:]
            centre = torch.einsum("nh,ne,hed->nd", hair.float(), eyes.float(), self.pair_w_avg).to(w.dtype)
        if isinstance(psi, torch.Tensor) and psi.dim() == 1:
            psi = psi[:, None].to(w.dtype)
        return centre + psi * (w - centre)

    def styles(self, w: torch.Tensor, w_mix: torch.Tensor | None = None, crossover: int | None = None,
               colours: torch.Tensor | None = None) -> torch.Tensor:
        """(N, num_ws, D): `w` for styles before `crossover`, `w_mix` from it on (0: all `w_mix`),
        the last styles offset by `colours` where the generator has `colour_styles`."""
        ws = w[:, None].expand(-1, self.num_ws, -1)
        if w_mix is not None:
            if crossover is None or not 0 <= crossover <= self.num_ws:
                raise ValueError(f"style mixing needs a crossover from 0 to {self.num_ws}, not {crossover!r}")
            ws = torch.cat([ws[:, :crossover], w_mix[:, None].expand(-1, self.num_ws - crossover, -1)], 1)
        if self.colour_styles is None:
            return ws
        if colours is None:
            raise ValueError("this generator's styles need the colours (colour_styles)")
        offsets = torch.einsum("nc,kcd->nkd", colours.to(self.colour_styles.dtype), self.colour_styles).to(ws.dtype)
        fine = len(self.colour_styles)
        return torch.cat([ws[:, :self.num_ws - fine], ws[:, self.num_ws - fine:] + offsets], 1)

    def noises(self, noise: str | Sequence[torch.Tensor], batch: int, device) -> list[torch.Tensor]:
        if isinstance(noise, str):
            if noise == "fixed":
                return [getattr(self, f"noise_{i}") for i in range(self.num_convs)]
            if noise == "random":
                sizes = [size for size, block in zip(self.block_sizes, self.blocks) for _ in block.convs]
                return [torch.randn(batch, 1, size, size, device=device) for size in sizes]
            raise ValueError(f'noise must be "random", "fixed" or {self.num_convs} tensors, not {noise!r}')
        if len(noise) != self.num_convs:
            raise ValueError(f"noise needs {self.num_convs} tensors, one per conv, not {len(noise)}")
        return list(noise)

    def synthesis(self, ws: torch.Tensor, noise: str | Sequence[torch.Tensor] = "random", edits: Sequence[FeatureEdit] = (),
                  features: Sequence[int] = ()):
        """Faces from per-layer styles `ws` (N, num_ws, D).

        `noise`: "random" (fresh per call), "fixed" (the stored noise: same pixels every call) or
        one (N or 1, 1, H, W) tensor per conv. `edits` change block inputs before the block runs.
        With `features` (block indices), returns (images, {block: its input, after edits}).
        """
        for k in [e.block for e in edits] + list(features):
            if not 0 <= k < len(self.blocks):
                raise ValueError(f"block must be from 0 to {len(self.blocks) - 1}, not {k}")
        noises = self.noises(noise, len(ws), ws.device)
        x = self.constant.expand(len(ws), -1, -1, -1)
        rgb, taken = None, {}
        for k, block in enumerate(self.blocks):
            for edit in edits:
                if edit.block == k:
                    x = edit.apply(x)
            if k in features:
                taken[k] = x
            first, count = self.first_conv[k], len(block.convs)
            x, rgb = block(x, rgb, ws[:, first:first + count + 1], noises[first:first + count])
        return (rgb, taken) if features else rgb

    def forward(self, z: torch.Tensor, truncation: float = 1.0, z_mix: torch.Tensor | None = None, crossover: int | None = None,
                noise: str | Sequence[torch.Tensor] = "random", hair: torch.Tensor | None = None,
                eyes: torch.Tensor | None = None) -> torch.Tensor:
        """`hair` and `eyes` (indices or weights, see `colours`) are required by, and only taken by, a conditional generator."""
        if self.conditional != (hair is not None and eyes is not None):
            raise ValueError("a conditional generator needs hair and eyes, an unconditional one takes neither")
        colours = self.colours(hair, eyes).to(z.device) if self.conditional else None
        w = self.truncate(self.mapping(z, colours), truncation, colours)
        w_mix = None if z_mix is None else self.truncate(self.mapping(z_mix, colours), truncation, colours)
        return self.synthesis(self.styles(w, w_mix, crossover, colours), noise)

