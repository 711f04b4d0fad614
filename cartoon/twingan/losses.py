"""What a TwinGAN training step computes: its generator passes, what the critics see, and the losses.

Per step (hinge GAN, DiffAugment on every image a critic sees): human→human and anime→anime
reconstruction (L1 + GAN), human→anime and anime→human GAN, and both round trips' cycle L1. Beside
them, optional and off by default: a second critic per domain on frozen VGG16 features, and the
`SourceTerms`, which tie each translation to the image it came from.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cartoon.training import hinge_critic_loss
from cartoon.twingan.model import ANIME, HUMAN
from cartoon.vgg import FEATURE_CRITIC_LAYERS, ContentLoss, FeatureCritic, LikenessLoss, VGG16Features

DOMAINS = (HUMAN, ANIME)
# TwinGAN's weights for the two L1 terms; a tenth of either lost (docs/twingan-experiments.md).
RECONSTRUCTION_WEIGHT = 10.0
CYCLE_WEIGHT = 10.0


class Translations(NamedTuple):
    human_to_human: torch.Tensor
    human_to_anime: torch.Tensor
    anime_to_human: torch.Tensor
    anime_to_anime: torch.Tensor
    cycle_human: torch.Tensor  # human → anime → human
    cycle_anime: torch.Tensor  # anime → human → anime

    def into(self, domain: int) -> torch.Tensor:
        """Everything generated into `domain`, as its critic is shown it: the reconstructions, then the translations."""
        return torch.cat([self.human_to_human, self.anime_to_human] if domain == HUMAN else [self.anime_to_anime, self.human_to_anime])

    def translated_into(self, domain: int) -> torch.Tensor:
        return self.anime_to_human if domain == HUMAN else self.human_to_anime


def translate_both_ways(g, human: torch.Tensor, drawn: torch.Tensor, requested=None, drawn_colours=None) -> Translations:
    """A training step's generator passes: each encoding decoded into both domains, then each
    translation back (in this order, which is the order batch norm sees the batches in). A
    colour-conditioned run asks the photos' anime translations for the `requested` (hair, eyes) and
    the portraits' reconstructions and round trips for their own tags, `drawn_colours`."""
    human_to_human, human_to_anime = g(human, [HUMAN, ANIME], colours=requested)
    anime_to_human, anime_to_anime = g(drawn, [HUMAN, ANIME], colours=drawn_colours)
    return Translations(human_to_human, human_to_anime, anime_to_human, anime_to_anime, g(human_to_anime, HUMAN),
                        g(anime_to_human, ANIME, colours=drawn_colours))


def pixel_losses(out: Translations, human: torch.Tensor, drawn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reconstruction L1 of both domains and the L1 of both round trips, unweighted."""
    reconstruction = F.l1_loss(out.human_to_human, human) + F.l1_loss(out.anime_to_anime, drawn)
    return reconstruction, F.l1_loss(out.cycle_human, human) + F.l1_loss(out.cycle_anime, drawn)


def at_side(images: torch.Tensor, side: int) -> torch.Tensor:
    """VGG losses compare at `side`²: VGG is the costliest part of a CPU step. At 64² two different
    people are still twice as far apart as a photo and its anime translation, and Gram matrices still
    tell the step-9,650 weights' translations' textures from a drawing's as well as at 128²."""
    if images.shape[-1] == side:
        return images
    # float: antialiased resizing has no bfloat16 kernel on the CPU
    return F.interpolate(images.float(), size=side, mode="bilinear", antialias=True, align_corners=False)


def critic_loss(critic, real: torch.Tensor, fake: torch.Tensor, augment) -> torch.Tensor:
    """Hinge loss of one domain's pixel critic: the domain's real images against everything generated into it."""
    scores = critic(augment(torch.cat([real, fake])))
    return hinge_critic_loss(scores[: len(real)], scores[len(real) :])


def build_feature_critics() -> nn.ModuleList:
    """A `FeatureCritic` per domain on VGG16's FEATURE_CRITIC_LAYERS."""
    return nn.ModuleList(FeatureCritic() for _ in DOMAINS)


def feature_activations(vgg: VGG16Features, images: torch.Tensor, augment, side: int) -> list[torch.Tensor]:
    """What the feature critics score: `images` augmented as the pixel critics see them, at the VGG side."""
    return vgg.activations(at_side(augment(images), side), FEATURE_CRITIC_LAYERS)


class SourceTerms:
    """The generator's terms that tie each translation to the image it came from, each on when its weight is:

    - content: VGG16 relu4_3 L1 between each photo and its anime translation (AnimeGAN's content loss);
    - cycle content: the same between each photo and its round trip, so the way back keeps what the
      photo's features say of the face (gender, age) and not only its pixels;
    - likeness: each anime translation's pooled relu4_3 features must pick out its own photo among the
      batch's and ~1,000 earlier ones (`LikenessLoss`, InfoNCE); anime likeness: each human translation
      its own anime portrait;
    - landmark: each anime translation keeps its photo's five RetinaFace landmarks, or only the head's
      pose (`cartoon.faces.LandmarkLoss`).

    VGG sees every image at `args.vgg_size`². `weights` maps each term's name, as `__call__` returns it, to its weight.
    """

    def __init__(self, args: argparse.Namespace, vgg: VGG16Features | None, device, memory_format):
        self.vgg, self.side = vgg, args.vgg_size
        self.weights = {"content": args.content_weight, "cycle_content": args.cycle_content_weight,
                        "likeness": args.likeness_weight, "anime_likeness": args.anime_likeness_weight,
                        "landmark": args.landmark_weight}
        self.content = ContentLoss(vgg).to(device) if args.content_weight or args.cycle_content_weight else None
        # Keyed by the translation's domain: anime translations pick out their photos, human ones their portraits.
        self.likeness = {d: LikenessLoss(vgg).to(device) for d, weight in ((ANIME, args.likeness_weight),
                                                                             (HUMAN, args.anime_likeness_weight)) if weight}
        self.landmarks = None
        if args.landmark_weight:
            if args.resolution < 64:  # known only now: a resumed or fine-tuned run takes its resolution from its model
                raise SystemExit(f"--landmark-weight needs a resolution of at least 64 (the face detector's), not {args.resolution}")
            from cartoon.faces import LandmarkLoss  # a face detector is loaded only when asked for

            self.landmarks = LandmarkLoss(measure=args.landmark_measure).to(device, memory_format=memory_format)

    @staticmethod
    def needs_vgg(args: argparse.Namespace) -> bool:
        return bool(args.content_weight or args.cycle_content_weight or args.likeness_weight or args.anime_likeness_weight)

    def __call__(self, out: Translations, reals: dict[int, torch.Tensor], critics_passes=None) -> dict[str, torch.Tensor]:
        """Each term's unweighted loss (0 when off). `critics_passes`, the feature critics' unaugmented
        activations (of the translations, of the real images), saves this the VGG passes they already made."""
        losses = dict.fromkeys(self.weights, torch.zeros(()))
        # The deepest (relu4_3) activations of the translations the terms judge, and of the images they
        # were translated from: a translation into domain d is of an image from 1 - d.
        judged = set(self.likeness) | ({ANIME} if self.weights["content"] else set())
        sourced = judged | ({ANIME} if self.weights["cycle_content"] else set())
        translated, sources = {}, {}
        for d in judged:
            translated[d] = critics_passes[0][d][-1] if critics_passes else self.vgg(at_side(out.translated_into(d), self.side))
        with torch.no_grad():
            for d in sourced:
                sources[d] = critics_passes[1][1 - d][-1] if critics_passes else self.vgg(at_side(reals[1 - d], self.side))
        if self.weights["content"]:
            losses["content"] = self.content.from_features(translated[ANIME], sources[ANIME])[0]
        if self.weights["cycle_content"]:
            losses["cycle_content"] = self.content.from_features(self.vgg(at_side(out.cycle_human, self.side)), sources[ANIME])[0]
        if ANIME in self.likeness:
            losses["likeness"] = self.likeness[ANIME].from_features(translated[ANIME], sources[ANIME])
        if HUMAN in self.likeness:
            losses["anime_likeness"] = self.likeness[HUMAN].from_features(translated[HUMAN], sources[HUMAN])
        if self.landmarks is not None:
            losses["landmark"] = self.landmarks(reals[HUMAN], out.human_to_anime)
        return losses

    def weighted(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.weights[name] * loss for name, loss in losses.items())
