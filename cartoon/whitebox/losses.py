"""Losses of the white-box cartoonizer: two patch discriminators and total variation
(VGG content is the shared `cartoon.vgg.ContentLoss`).

    surface    LSGAN on guided-filter-smoothed cartoons vs smoothed outputs   (--w0)
    texture    LSGAN on randomly greyed cartoons vs greyed outputs             (--w1)
    structure  VGG16 relu4_3 L1 between the output and its own superpixel map  (--w2)
    content    VGG16 relu4_3 L1 between the output and the input photo        (--w3)
    smoothness total variation of the output                                   (--w4)
    landmarks  cartoon.faces.LandmarkLoss: the cartoon keeps the photo's face (--w-landmark)
    flat       L1 between the output and its superpixel map, a shortcut to flat regions (--w-flat)
    colour     L1 between the output's and the photo's local mean colours      (--w-colour)
    luma       L1 between the output's and the photo's luminance at a face's scale (--w-luma)
    skin luma  L1 between the output's and the photo's typical luminance on the face's skin (--w-skin-luma)
    feature    hinge critic (cartoon.vgg.FeatureCritic) on VGG16 features of standardised greys (--w-feature)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from cartoon.faces.skin import skin_masks
from cartoon.whitebox.colour import luma
from cartoon.whitebox.guided_filter import box_mean


class PatchDiscriminator(nn.Module):
    """Three stride-2 stages of spectrally normalised convolutions; one realness score per patch."""

    def __init__(self, in_channels: int = 3, channels: int = 32, stages: int = 3):
        super().__init__()
        layers, width = [], in_channels
        for stage in range(stages):
            out = channels * 2**stage
            layers += [
                spectral_norm(nn.Conv2d(width, out, 3, 2, 1)),
                nn.LeakyReLU(0.2, inplace=True),
                spectral_norm(nn.Conv2d(out, out, 3, 1, 1)),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = out
        layers.append(spectral_norm(nn.Conv2d(width, 1, 1)))
        self.layers = nn.Sequential(*layers)

    def forward(self, images):
        return self.layers(images)


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN: real patches toward 1, generated ones toward 0."""
    return 0.5 * ((real_scores - 1).pow(2).mean() + fake_scores.pow(2).mean())


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return (fake_scores - 1).pow(2).mean()


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels (both directions)."""
    dy = images[..., 1:, :] - images[..., :-1, :]
    dx = images[..., :, 1:] - images[..., :, :-1]
    return dy.pow(2).mean() + dx.pow(2).mean()


def colour_drift(photo: torch.Tensor, cartoon: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """L1 between the mean colours of `cell`×`cell` blocks of the photo and of its cartoon.

    The surface critic learns the cartoon set's palette — pale skin on pastel backgrounds — and
    pulls every face's colours toward it; block means keep the person's skin and hair colour
    while leaving what makes a cartoon (flat fills, thin dark lines) free inside each block.
    """
    return F.l1_loss(F.avg_pool2d(cartoon, cell), F.avg_pool2d(photo, cell))


def luma_drift(photo: torch.Tensor, cartoon: torch.Tensor, share: float = 0.25) -> torch.Tensor:
    """L1 between the photo's and the cartoon's luminance, box-averaged at a radius of `share` of the
    shorter side (32 of a 128 crop: about a face's width), in float32 whatever the autocast.

    The colour term's 8×8 blocks held hue but let the cel generator lighten skin as its look grew,
    darker skin most (+5 L*). At this scale only a face's overall level is held: the shading, fills
    and lines inside it stay free (docs/whitebox-experiments.md).
    """
    radius = max(1, round(share * min(photo.shape[-2:])))
    return F.l1_loss(box_mean(luma(cartoon.float()), radius), box_mean(luma(photo.float()), radius))


def skin_luma_drift(photo: torch.Tensor, cartoon: torch.Tensor, landmarks: torch.Tensor, has_face: torch.Tensor) -> torch.Tensor:
    """Per face, |level of the cartoon − level of the photo| on the skin region of the photo's
    `landmarks` (B, 5, 2, in pixels; `cartoon.faces.skin`), summed and divided by B; a photo without
    a face (`has_face` False) or whose landmarks enclose no pixel costs 0. In float32.

    The level is the interquartile mean of the region's luminance: the mean of its pixels between the
    25th and 75th percentiles. A box at a face's scale (`luma_drift`) also averages hair, background
    and clothes (arm U); a plain mean over the skin could be paid for by drawing dark lines inside it
    while the rest of the skin lightened, and the evaluation reads the median (arm V,
    docs/whitebox-experiments.md). The middle half follows the median and still passes its gradient
    to half the skin.
    """
    masks = (skin_masks(landmarks, *photo.shape[-2:]) * has_face.float()[:, None, None, None]).bool()
    photo_luma, cartoon_luma = luma(photo.float()), luma(cartoon.float())
    drift = photo.new_zeros((), dtype=torch.float32)
    for mask, photo_face, cartoon_face in zip(masks, photo_luma, cartoon_luma):
        if mask.any():
            drift = drift + (interquartile_mean(cartoon_face[mask]) - interquartile_mean(photo_face[mask])).abs()
    return drift / photo.shape[0]


def interquartile_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of the 1-D `values` between their 25th and 75th percentiles (the bounds pass no gradient).

    Two distinct values have both quartiles strictly between them and nothing inside: their plain mean."""
    low, high = torch.quantile(values.detach(), values.new_tensor([0.25, 0.75]))
    middle = values[(values >= low) & (values <= high)]
    return middle.mean() if middle.numel() else values.mean()
