"""DiffAugment (Zhao et al. 2020): differentiable augmentations a critic sees on real and generated
images alike, so that it cannot memorise a small training set while the generator still gets
gradients through them. A policy names the kinds, comma-separated: "color", "translation",
"cutout" (or "none").

The ACGAN trainer keeps its own translation and cutout (`cartoon.acgan.train`) while a run
resumes from it; they are a twin of this one, to fold in when that run ends.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def diff_augment(images: torch.Tensor, policy: str) -> torch.Tensor:
    """`images` (N, 3, H, W) augmented per image by `policy`; gradients flow through every kind."""
    n = images.shape[0]
    if "color" in policy:
        images = images + (torch.rand(n, 1, 1, 1, device=images.device) - 0.5)
        mean = images.mean(1, keepdim=True)
        images = (images - mean) * (torch.rand(n, 1, 1, 1, device=images.device) * 2) + mean
        mean = images.mean((1, 2, 3), keepdim=True)
        images = (images - mean) * (torch.rand(n, 1, 1, 1, device=images.device) + 0.5) + mean
    if "translation" in policy:
        # shift by up to 1/8 of the side, zeros coming in (grid units span 2 per side)
        shift = (torch.rand(n, 2, device=images.device) - 0.5) * 0.5
        theta = torch.zeros(n, 2, 3, device=images.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)
    if "cutout" in policy:
        side = images.shape[-1]
        half = side // 4  # a square of half the side, as in DiffAugment
        centre = torch.randint(0, side, (n, 2, 1, 1), device=images.device)
        coords = torch.arange(side, device=images.device)
        inside_y = (coords.view(1, side, 1) - centre[:, 0]).abs() < half
        inside_x = (coords.view(1, 1, side) - centre[:, 1]).abs() < half
        images = images * (~(inside_y & inside_x)).unsqueeze(1).to(images.dtype)
    return images
