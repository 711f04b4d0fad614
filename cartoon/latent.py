"""Paths through a generator's noise space, shared by every generator that morphs between faces.

`lerp` and `slerp` blend two noise vectors; `INTERPOLATIONS` names them for user choices, and
`check_frames` bounds how many frames a path may have so one request cannot render for minutes.
"""

from __future__ import annotations

import torch

MAX_FRAMES = 120


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation along the last axis; keeps the noise norm typical of the prior.

    Directions are interpolated on the great circle and the length linearly, so the endpoints
    are exactly `a` and `b` even when their lengths differ (different truncations).
    """
    a_norm, b_norm = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    a_dir, b_dir = a / a_norm.clamp_min(1e-12), b / b_norm.clamp_min(1e-12)
    cosine = (a_dir * b_dir).sum(-1, keepdim=True).clamp(-1, 1)
    angle = torch.acos(cosine)
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    sine = torch.sin(angle)
    if float(sine.abs().min()) < 1e-6:  # (anti)parallel: the great circle is undefined, fall back to a line
        return lerp(a, b, t)
    direction = (torch.sin((1 - t) * angle) * a_dir + torch.sin(t * angle) * b_dir) / sine
    return direction * lerp(a_norm, b_norm, t)


INTERPOLATIONS = {"slerp": slerp, "lerp": lerp}


def check_frames(frames: int) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int) or not 2 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames must be a whole number from 2 to {MAX_FRAMES}, not {frames!r}")
    return frames
