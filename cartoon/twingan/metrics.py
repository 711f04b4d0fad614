"""What the TwinGAN evaluation measures on a set of translations: realism against a real set
(KID, FID, detail, texture), pose kept (landmark NME), likeness kept, and gender as a probe reads it.

Every function here takes images or features already in hand, so each can be tested on made-up
tensors; the held-out faces come from `cartoon.twingan.held_out`, the report from `cartoon.twingan.evaluate`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from torchvision.transforms.functional import gaussian_blur

from cartoon.images import to_image
from cartoon.inception import InceptionPool3, as_uint8
from cartoon.twingan.losses import at_side
from cartoon.vgg import StyleLoss

BATCH = 16  # images per pass of a feature network: a thousand at 299² take gigabytes
DETAIL_SIGMA = 2.0
TEXTURE_SIDE = 64  # the trainer's default --vgg-size


def blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation `sigma` pixels, the kernel reaching three deviations out."""
    return gaussian_blur(images, 2 * math.ceil(3 * sigma) + 1, sigma)


def local_contrast(images: torch.Tensor) -> float:
    """Mean |x − blur(x)| of images in [-1, 1]: how much of them is edges and texture finer than the blur."""
    return float((images - blurred(images, DETAIL_SIGMA)).abs().mean())


@torch.no_grad()
def mean_grams(style: StyleLoss, images: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's Gram matrix averaged over a whole set, computed a batch at a time."""
    total = None
    for i in range(0, len(images), BATCH):
        batch = at_side(images[i : i + BATCH], TEXTURE_SIDE)
        grams = [g * len(batch) for g in style.grams(batch)]
        total = grams if total is None else [t + g for t, g in zip(total, grams)]
    return [t / len(images) for t in total]


def texture_distance(grams: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    return float(sum(F.l1_loss(g, r) for g, r in zip(grams, reference)))


class Realism:
    """KID×100 (mean ± std over subsets), FID, detail and texture distance of generated images against
    one held-out real set."""

    def __init__(self, inception: InceptionPool3, style: StyleLoss, real: torch.Tensor):
        self.kid = KernelInceptionDistance(feature=inception, subsets=100, subset_size=100, reset_real_features=False)
        self.fid = FrechetInceptionDistance(feature=inception, reset_real_features=False)
        real_uint8 = as_uint8(real)
        self.kid.update(real_uint8, real=True)
        self.fid.update(real_uint8, real=True)
        self.real_count = len(real)
        self.real_detail = local_contrast(real)
        self.style = style
        self.real_grams = mean_grams(style, real)

    def __call__(self, fakes: torch.Tensor) -> dict:
        self.kid.reset()
        self.fid.reset()
        fake = as_uint8(fakes)
        self.kid.update(fake, real=False)
        self.fid.update(fake, real=False)
        self.kid.subset_size = min(100, len(fakes), self.real_count)  # KID stays unbiased with small subsets
        mean, std = self.kid.compute()
        return {"kid_x100": float(mean) * 100, "kid_x100_std": float(std) * 100, "fid": float(self.fid.compute()), "images": len(fakes),
                "detail": local_contrast(fakes), "detail_real": self.real_detail,
                "texture_distance": texture_distance(mean_grams(self.style, fakes), self.real_grams)}


def landmark_errors(photos: torch.Tensor, translations: torch.Tensor) -> list[float | None]:
    """Per pair, landmark NME (photo vs translation); None where either face is not found."""
    from cartoon.faces import detect_faces

    errors = []
    for photo, translation in zip(photos, translations):
        found = [detect_faces(to_image(x), max_faces=1, fallback=False) for x in (photo, translation)]
        if not all(found):
            errors.append(None)
            continue
        a, b = (np.asarray(faces[0].landmarks, np.float64) for faces in found)
        eyes = np.linalg.norm(a[0] - a[1])
        errors.append(float(np.linalg.norm(a - b, axis=1).mean() / max(eyes, 1e-6)))
    return errors


def landmark_summary(errors: list[float | None]) -> dict:
    found = [e for e in errors if e is not None]
    return {"landmark_nme": float(np.mean(found)) if found else None, "faces_found": len(found) / max(len(errors), 1)}


def likeness_ranks(photo_features: torch.Tensor, translation_features: torch.Tensor) -> torch.Tensor:
    """Per photo, the share of the other translations more like it than its own translation (0 is best)."""
    photos = F.normalize(photo_features - photo_features.mean(0), dim=1)
    translations = F.normalize(translation_features - translation_features.mean(0), dim=1)
    similarity = photos @ translations.T  # [i, j]: photo i against translation j
    nearer = (similarity > similarity.diagonal()[:, None]).sum(1)
    return nearer.float() / max(len(photos) - 1, 1)


def likeness_summary(ranks: torch.Tensor) -> dict:
    return {"own_nearest": float((ranks == 0).float().mean()), "likeness_rank": float(ranks.mean())}


class GenderProbe:
    """Logistic regression on standardised pool3 features: P(female).

    2,048 features against a few thousand faces overfit without a strong penalty. For the step-4,850
    model, all 2,700 train faces with weight decay 1 judged 79% of held-out photos and 76% of their
    reconstructions right (adults: 84%, 83%); 1,000 faces with 1e-3, as before, 76% and 70%.
    """

    def __init__(self, features: torch.Tensor, female: torch.Tensor, steps: int = 500, weight_decay: float = 1.0):
        self.mean, self.std = features.mean(0), features.std(0) + 1e-6
        x = (features - self.mean) / self.std
        self.linear = nn.Linear(x.shape[1], 1)
        optimiser = torch.optim.LBFGS(self.linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            loss = F.binary_cross_entropy_with_logits(self.linear(x).squeeze(1), female.float())
            loss = loss + weight_decay * self.linear.weight.square().sum()
            loss.backward()
            return loss

        optimiser.step(closure)

    @torch.no_grad()
    def p_female(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear((features - self.mean) / self.std).squeeze(1))


def gender_summary(p_photo: torch.Tensor, p_reconstruction: torch.Tensor, p_round_trip: torch.Tensor) -> dict:
    """How the probe reads one group's photos, reconstructions and round trips (P(female), one per face).

    The reconstruction (human → human) carries the generator's blur and artefacts but never passes
    through anime, so it is the control: what the round trip changes beyond it, anime changed.
    """
    female_photo, female_reconstruction, female_round_trip = (p > 0.5 for p in (p_photo, p_reconstruction, p_round_trip))
    read_male, read_female = ~female_reconstruction, female_reconstruction
    return {
        "read_as_female_photo": float(female_photo.float().mean()),
        "read_as_female_reconstruction": float(female_reconstruction.float().mean()),
        "read_as_female_round_trip": float(female_round_trip.float().mean()),
        # Per face, not per group: of the reconstructions read as male, the share whose round trip
        # reads female; the opposite flow is the probe's own disagreement between two generated images.
        "male_turned_female": float((female_round_trip & read_male).sum() / max(int(read_male.sum()), 1)),
        "read_as_male_reconstruction_count": int(read_male.sum()),
        "female_turned_male": float((~female_round_trip & read_female).sum() / max(int(read_female.sum()), 1)),
        "read_as_female_reconstruction_count": int(read_female.sum()),
        # The whole group's drift in probability: every face counts, not only those that cross 0.5, so a
        # small change of model moves it a little rather than flipping the faces near the boundary.
        "p_female_shift": float((p_round_trip - p_reconstruction).mean()),
    }
