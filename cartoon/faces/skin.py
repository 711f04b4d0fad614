"""Where a face's skin is, from its five landmarks: a parallelogram in the face's own frame, from the
left eye's centre across to the right's and down the band between the eyes' line and the mouth
corners' line given by SKIN_BAND — the nose and the cheeks beside it, clear of lashes and lips, on
nearly every face. It tilts with the head.

The white-box evaluation reads skin colour there (`cartoon.whitebox.likeness`), and the training term
that holds skin luminance (`cartoon.whitebox.losses.skin_luma_drift`) pays for the same region.
"""

from __future__ import annotations

import torch

# rows of the region, as fractions of the way from the eyes' line down to the mouth corners' line:
# below the lower lids and lashes, above the upper lip
SKIN_BAND = (0.25, 0.75)


def skin_frame(points):
    """(..., 5, 2) landmarks in RetinaFace's order (eyes, nose, mouth corners), numpy or torch →
    origin, across, down, each (..., 2): the region is origin + u·across + v·down for |u| ≤ ½ and
    v within SKIN_BAND."""
    eyes = (points[..., 0, :] + points[..., 1, :]) / 2
    mouth = (points[..., 3, :] + points[..., 4, :]) / 2
    return eyes, points[..., 1, :] - points[..., 0, :], mouth - eyes


def skin_corners(points):
    """(5, 2) landmarks → the region's four corners, in order around it."""
    origin, across, down = skin_frame(points)
    top, bottom = SKIN_BAND
    return [origin + u * across + v * down for u, v in ((-0.5, top), (0.5, top), (0.5, bottom), (-0.5, bottom))]


def skin_masks(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 5, 2) landmarks in pixels (x right, y down; a pixel's centre at +½) → (B, 1, H, W) float
    masks, 1 at the pixels whose centre is inside the region; all 0 for landmarks that enclose nothing."""
    origin, across, down = (part[:, None, None, :] for part in skin_frame(points.float()))
    ys, xs = torch.meshgrid(torch.arange(height, device=points.device) + 0.5,
                            torch.arange(width, device=points.device) + 0.5, indexing="ij")
    offset = torch.stack([xs, ys], -1) - origin  # (B, H, W, 2)
    # solve offset = u·across + v·down by Cramer's rule
    det = across[..., 0] * down[..., 1] - across[..., 1] * down[..., 0]
    spans = det.abs() > 1e-6
    det = torch.where(spans, det, torch.ones_like(det))
    u = (offset[..., 0] * down[..., 1] - offset[..., 1] * down[..., 0]) / det
    v = (across[..., 0] * offset[..., 1] - across[..., 1] * offset[..., 0]) / det
    top, bottom = SKIN_BAND
    inside = spans & (u.abs() <= 0.5) & (v >= top) & (v <= bottom)
    return inside.unsqueeze(1).float()
