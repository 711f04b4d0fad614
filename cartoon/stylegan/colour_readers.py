"""Colour readers used only in training the avatar sampler (`cartoon.stylegan.train --condition colours`).

The critic's own hair and eye heads (`Discriminator.classify`) learn the colours of real faces;
these add other readings of the generated faces' colours, each against a failure of the heads alone.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from cartoon.stylegan.critic import Discriminator


class TwinClassifier(nn.Module):
    """TAC-GAN's twin heads (Gong et al. 2019): hair and eye heads like the critic's, on the critic's
    `features`, that learn the colours generated faces were drawn with.

    The critic's own heads, learnt on real faces, pay the generator most for faces they read without
    doubt, which pulls each colour pair toward a few typical faces. How well the twin reads the
    generated faces measures that pull; the generator, paid for the twin's error too, keeps the real
    faces' spread inside a pair instead."""

    def __init__(self, critic: Discriminator):
        super().__init__()
        self.hair, self.eyes = copy.deepcopy(critic.hair), copy.deepcopy(critic.eyes)

    def start_from(self, critic: Discriminator):
        """Take the critic's heads as they are: the twin starts reading fakes as the critic does, so
        the generator's two colour terms start out cancelling instead of one being noise."""
        self.hair.load_state_dict(critic.hair.state_dict())
        self.eyes.load_state_dict(critic.eyes.state_dict())

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.hair(features), self.eyes(features)


class ThumbnailHair(nn.Module):
    """Hair colour read from a `size`² thumbnail of the face by a small MLP, learnt on real faces.

    The critic's heads read colours from the critic's features, which a generator can satisfy
    with more than colour: they read 98% of generated faces as asked where an independent judge
    reads 83%, the misses hair of a neighbouring colour (white drawn grey or brown, pink drawn red).
    A thumbnail keeps the colour layout and drops texture and line, so paying the generator for
    what it reads there pays for the hair's colour itself."""

    def __init__(self, hair_classes: int, size: int = 16, hidden: int = 128):
        super().__init__()
        self.size = size
        self.read = nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hair_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.read(F.adaptive_avg_pool2d(images.float(), self.size))
