"""The three cartoon representations the white-box losses compare (Wang & Yu 2020, sec. 3).

surface    guided-filter self-smoothing: keeps edges and overall colour, drops texture and detail.
structure  superpixels, each painted one colour chosen by how varied the region is (adaptive
           colouring), giving the flat, sparse regions of cel shading.
texture    a random grey conversion: colour and luminance are taken away, only strokes and edges stay.

`line_ink` paints an image's own thin dark lines into a structure map (a training target, not in the paper).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.segmentation import felzenszwalb, slic

from cartoon.whitebox.colour import luma
from cartoon.whitebox.guided_filter import guided_filter

# Ranges of the random grey weights for R, G and B, centred near the usual luminance weights.
GREY_WEIGHT_RANGES = ((0.199, 0.399), (0.487, 0.687), (0.014, 0.214))
# Standard deviation (0..255 scale) below which a region is painted its mean, above which its median.
FLAT_STD, BUSY_STD = 20.0, 40.0
# Line ink as the flattening study measured it (docs/whitebox-experiments.md, Felzenszwalb 400 + line ink):
# a pixel is ink by how much darker (luma, 0..1 scale) it is than both its region's fill and its own
# 5×5 mean, ramping from 0.03 to 0.08, and is painted its fill × 0.4. The local mean keeps the
# shading inside a region, darker than the fill but not than its surroundings, from counting as ink.
INK_RAMP, INK_SHADE, INK_WINDOW = (0.03, 0.08), 0.4, 5


def surface(images: torch.Tensor, radius: int = 5, eps: float = 0.2) -> torch.Tensor:
    return guided_filter(images, images, radius, eps)


def texture(*batches: torch.Tensor, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Each (N, 3, H, W) batch → (N, 1, H, W) grey, all with the same random channel weights."""
    low = torch.tensor([r[0] for r in GREY_WEIGHT_RANGES])
    high = torch.tensor([r[1] for r in GREY_WEIGHT_RANGES])
    weights = low + (high - low) * torch.rand(3, generator=generator)
    weights = (weights / weights.sum()).view(1, 3, 1, 1)
    return [(batch * weights.to(batch)).sum(dim=1, keepdim=True) for batch in batches]


def standardised_grey(grey: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) greys → (N, 3, H, W) with each image's mean 0 and standard deviation 0.5: what is
    left is where it is light and dark, not how light or how contrasted the whole picture is."""
    centred = grey.float() - grey.float().mean((2, 3), keepdim=True)
    return (centred * (0.5 / centred.std((2, 3), keepdim=True).clamp_min(1e-3))).expand(-1, 3, -1, -1)


def segment(image: np.ndarray, method: str = "slic", segments: int = 200) -> np.ndarray:
    """Superpixel labels (H, W) of an RGB float image in [0, 1]."""
    if method == "slic":
        return slic(image, n_segments=segments, compactness=10, start_label=0, channel_axis=-1)
    if method == "felzenszwalb":
        # scale grows with the image so that the segment count stays near `segments`
        return felzenszwalb(image, scale=image.shape[0] * image.shape[1] / segments, sigma=0.8, min_size=20)
    raise ValueError(f"unknown superpixel method {method!r}; use 'slic' or 'felzenszwalb'")


def adaptive_colouring(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Paint each region of `labels` one colour: its mean when it is flat, its median when busy.

    The mean of a busy region is a washed-out grey; its median is a colour actually present,
    which keeps contrast (the paper's fix for the low contrast of plain superpixel means).
    In between, the two are blended.
    """
    ids = np.unique(labels)
    painted = np.empty_like(image)
    spread = np.asarray(ndimage.standard_deviation(image.mean(axis=-1) * 255, labels, ids))
    # 0 → mean, 1 → median, linear in between
    weight = np.clip((spread - FLAT_STD) / (BUSY_STD - FLAT_STD), 0, 1)
    lookup = np.zeros(labels.max() + 1, dtype=np.int64)
    lookup[ids] = np.arange(len(ids))
    index = lookup[labels]
    for channel in range(image.shape[-1]):
        values = image[..., channel]
        means = np.asarray(ndimage.mean(values, labels, ids))
        medians = np.asarray(ndimage.median(values, labels, ids))
        painted[..., channel] = ((1 - weight) * means + weight * medians)[index]
    return painted


def structure(images: torch.Tensor, method: str = "slic", segments: int = 200) -> torch.Tensor:
    """Superpixel representation of a batch (N, 3, H, W) in [-1, 1]; not differentiable."""
    arrays = ((images.detach().float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
    painted = [adaptive_colouring(a, segment(a, method, segments)) for a in arrays]
    return torch.from_numpy(np.stack(painted)).permute(0, 3, 1, 2).to(images) * 2 - 1


def line_ink(flat: torch.Tensor, image: torch.Tensor, ramp=INK_RAMP, shade: float = INK_SHADE,
             window: int = INK_WINDOW) -> torch.Tensor:
    """`flat` (a structure map of `image`) with `image`'s thin dark lines painted in as darkened fill;
    both (N, 3, H, W) in [-1, 1]. Not differentiable: a target, like `structure`."""
    flat, image = flat.detach(), image.detach().to(flat.dtype)
    # halved: a difference on the [-1, 1] scale is twice the same difference on the 0..1 scale
    grey, fill = (luma(x) / 2 for x in (image, flat))
    local = F.avg_pool2d(F.pad(grey, [window // 2] * 4, mode="reflect"), window, stride=1)
    darker = torch.minimum(fill - grey, local - grey)
    weight = ((darker - ramp[0]) / (ramp[1] - ramp[0])).clamp(0, 1)
    inked = (flat + 1) * shade - 1  # fill × shade on the 0..1 scale
    return flat + weight * (inked - flat)
