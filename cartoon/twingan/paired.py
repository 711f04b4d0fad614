"""Two TwinGAN models compared on the same held-out faces (`evaluate --against`): bootstrap
intervals on their KID×100 and landmark-NME differences, and a side-by-side picture.

Kept apart from `cartoon.twingan.metrics` because it measures nothing new: it resamples what the
metrics already computed for both models, so that a difference of a few tenths says whether
another draw of faces would reverse it.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import make_grid


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel, (x·y / d + 1)³, as torchmetrics computes it."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def resampled_kid(within_fake: np.ndarray, within_real: np.ndarray, across: np.ndarray,
                  fake_counts: np.ndarray, real_counts: np.ndarray) -> np.ndarray:
    """Unbiased MMD² (KID) of resamples given as how often each original image was drawn, a row per draw.

    An image drawn twice is never compared with itself: pairs of one original are left out of the
    within-set terms, as the unbiased estimator leaves out the diagonal. All-ones counts give the
    plain estimate over the whole sets.
    """
    def within(kernel, counts):
        pairs = np.einsum("di,ij,dj->d", counts, kernel, counts) - (counts**2) @ np.diag(kernel)
        return pairs / np.maximum(counts.sum(1) ** 2 - (counts**2).sum(1), 1)

    cross = np.einsum("di,ij,dj->d", fake_counts, across, real_counts) / (fake_counts.sum(1) * real_counts.sum(1))
    return within(within_fake, fake_counts) + within(within_real, real_counts) - 2 * cross


def paired_comparison(real: torch.Tensor, fakes: torch.Tensor, fakes_against: torch.Tensor, errors: list[float | None],
                      errors_against: list[float | None], draws: int = 2000, seed: int = 0) -> dict:
    """One model's KID×100 and landmark NME minus another's on the same photos, with 90 % bootstrap intervals.

    real: (R, F) pool3 features of the real set; fakes, fakes_against: (N, F) features of the two
    models' translations of the same N photos, row for row; errors, errors_against: their per-photo
    NME (None where a face is not found). Each draw resamples the photos, and the real images, once
    for both models: what varies is which faces are asked, never how the two models answer them.
    `better_share` is the share of draws in which the first model scores lower (better).
    """
    rng = np.random.default_rng(seed)
    real, fakes, fakes_against = (np.asarray(x, np.float64) for x in (real, fakes, fakes_against))

    def resample_counts(n):
        return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(draws)]).astype(np.float64)

    fake_counts, real_counts = resample_counts(len(fakes)), resample_counts(len(real))
    everything = np.ones((1, len(fakes))), np.ones((1, len(real)))
    within_real = polynomial_kernel(real, real)

    def kid_x100(x, counts):
        return 100 * resampled_kid(polynomial_kernel(x, x), within_real, polynomial_kernel(x, real), *counts)

    kid, kid_against = (float(kid_x100(x, everything)[0]) for x in (fakes, fakes_against))
    kid_differences = kid_x100(fakes, (fake_counts, real_counts)) - kid_x100(fakes_against, (fake_counts, real_counts))
    result = {"kid_x100": kid, "kid_x100_against": kid_against, "kid_x100_difference": kid - kid_against,
              "kid_x100_interval": np.percentile(kid_differences, [5, 95]).tolist(),
              "kid_x100_better_share": float((kid_differences < 0).mean())}
    # Pose is compared on the photos whose face both models' translations keep findable.
    both = [(a, b) for a, b in zip(errors, errors_against) if a is not None and b is not None]
    if len(both) >= 2:
        nme = np.array(both)
        picks = rng.integers(0, len(nme), (draws, len(nme)))
        nme_differences = nme[picks, 0].mean(1) - nme[picks, 1].mean(1)
        result |= {"nme_pairs": len(nme), "nme": float(nme[:, 0].mean()), "nme_against": float(nme[:, 1].mean()),
                   "nme_difference": float(nme[:, 0].mean() - nme[:, 1].mean()),
                   "nme_interval": np.percentile(nme_differences, [5, 95]).tolist(),
                   "nme_better_share": float((nme_differences < 0).mean())}
    return result


def comparison_grid(sets: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], columns: int) -> torch.Tensor:
    """Per set of (sources, this model's translations, the other's), `columns` evenly spaced faces:
    a row of sources over a row of each model's translations of them, the sets stacked, in [0, 1]."""
    rows = []
    for sources, this, that in sets:
        picks = torch.linspace(0, len(sources) - 1, min(columns, len(sources))).round().long()
        blank = sources.new_ones(columns - len(picks), *sources.shape[1:])  # white: a short set's rows stay aligned
        rows += [torch.cat([images[picks], blank]) for images in (sources, this, that)]
    return make_grid(torch.cat(rows).clamp(-1, 1) * 0.5 + 0.5, nrow=columns, padding=2, pad_value=1.0)
