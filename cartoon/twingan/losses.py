"""What a TwinGAN training step computes: its generator passes, what the critics see, and the losses.

Per step (hinge GAN, DiffAugment on every image a critic sees): human→human and anime→anime
reconstruction (L1 + GAN), human→anime and anime→human GAN, and both round trips' cycle L1. Beside
them, optional and off by default, the `SourceTerms`, which tie each translation to the image it
came from.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import torch
import torch.nn.functional as F

from cartoon.training import hinge_critic_loss
from cartoon.twingan.model import ANIME, HUMAN
from cartoon.vgg import ContentLoss, VGG16Features

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


class SourceTerms:
    """The generator's terms that tie each translation to the image it came from, each on when its weight is:

    - content: VGG16 relu4_3 L1 between each photo and its anime translation (AnimeGAN's content loss);
    - cycle content: the same between each photo and its round trip, so the way back keeps what the
      photo's features say of the face (gender, age) and not only its pixels;
    - landmark: each anime translation keeps its photo's five RetinaFace landmarks, or only the head's
      pose (`cartoon.faces.LandmarkLoss`).

    VGG sees every image at `args.vgg_size`². `weights` maps each term's name, as `__call__` returns it, to its weight.
    """

    def __init__(self, args: argparse.Namespace, device, memory_format):
        self.side = args.vgg_size
        self.weights = {"content": args.content_weight, "cycle_content": args.cycle_content_weight, "landmark": args.landmark_weight}
        self.content = None
        if args.content_weight or args.cycle_content_weight:
            self.content = ContentLoss(VGG16Features("relu4_3").to(device, memory_format=memory_format))
        self.landmarks = None
        if args.landmark_weight:
            if args.resolution < 64:  # known only now: a resumed or fine-tuned run takes its resolution from its model
                raise SystemExit(f"--landmark-weight needs a resolution of at least 64 (the face detector's), not {args.resolution}")
            from cartoon.faces import LandmarkLoss  # a face detector is loaded only when asked for

            self.landmarks = LandmarkLoss(measure=args.landmark_measure).to(device, memory_format=memory_format)

    def __call__(self, out: Translations, reals: dict[int, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each term's unweighted loss (0 when off)."""
        losses = dict.fromkeys(self.weights, torch.zeros(()))
        if self.content is not None:
            vgg = self.content.vgg
            with torch.no_grad():  # one pass over the photos serves both content terms
                photos = vgg(at_side(reals[HUMAN], self.side))
            for name, judged in (("content", out.human_to_anime), ("cycle_content", out.cycle_human)):
                if self.weights[name]:
                    losses[name] = self.content.from_features(vgg(at_side(judged, self.side)), photos)[0]
        if self.landmarks is not None:
            losses["landmark"] = self.landmarks(reals[HUMAN], out.human_to_anime)
        return losses

    def weighted(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.weights[name] * loss for name, loss in losses.items())
