"""A patchwise contrastive term (PatchNCE, Park et al. 2020, "Contrastive Learning for Unpaired
Image-to-Image Translation") on TwinGAN's shared encoder.

Each photo's anime translation is encoded again; at every compared side, a patch of its features
should be nearer the patch at the same place in the photo's features than any other patch of that
photo. It keeps what is where (the layout, the person's features) without asking the translation
to keep the photo's pixels, which the cycle's L1 asks, so the drawing is free to change texture.
The encoder is the generator's own, as in CUT; a small head per side projects patches before they
are compared, trained with the generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cartoon.twingan.model import TwinGAN

SIDES = (32, 16, 8, 4)  # the encoder's features at 32², 16² and 8², and the 4² code
PATCHES = 256
TEMPERATURE = 0.07
HEAD_WIDTH = 256


class PatchNCE(nn.Module):
    """Projection heads for `sides` of `generator`'s encoder, and the contrastive loss between a
    photo's features and its translation's."""

    def __init__(self, generator: TwinGAN, sides=SIDES, patches: int = PATCHES, temperature: float = TEMPERATURE):
        super().__init__()
        widths = generator.feature_widths()
        if unknown := [side for side in sides if side not in widths]:
            raise ValueError(f"the encoder has no features at side {unknown}; it has {sorted(widths)}")
        # one order whatever the flags' order, so a resumed run's head moments meet their own heads
        self.sides, self.patches, self.temperature = tuple(sorted(set(sides), reverse=True)), patches, temperature
        self.heads = nn.ModuleDict({str(side): nn.Sequential(nn.Linear(widths[side], HEAD_WIDTH), nn.ReLU(),
                                                             nn.Linear(HEAD_WIDTH, HEAD_WIDTH)) for side in self.sides})

    def forward(self, generator: TwinGAN, photos: torch.Tensor, translations: torch.Tensor) -> torch.Tensor:
        """The mean over sides of the InfoNCE loss: each translation patch's own photo patch against the photo's others."""
        with torch.no_grad():  # the photo's patches are the keys; only the translation's side learns, as in CUT
            keys = generator.features(photos)
        queries = generator.features(translations)
        losses = []
        # in float32 even inside a bf16 step: at a temperature of 0.07, bf16 logits would be rounded to about 0.06
        with torch.autocast(photos.device.type, enabled=False):
            for side in self.sides:
                key, query = (features[side].float().flatten(2).transpose(1, 2) for features in (keys, queries))  # (N, H·W, C)
                chosen = torch.randperm(key.shape[1], device=key.device)[: self.patches]
                head = self.heads[str(side)]
                with torch.no_grad():  # the keys are detached after their projection too, as in CUT: the head learns from the queries
                    key = F.normalize(head(key[:, chosen]), dim=-1)
                query = F.normalize(head(query[:, chosen]), dim=-1)
                logits = query @ key.transpose(1, 2) / self.temperature  # (N, P, P): same place on the diagonal
                same_place = torch.arange(len(chosen), device=key.device).repeat(len(key))
                losses.append(F.cross_entropy(logits.flatten(0, 1), same_place))
        return torch.stack(losses).mean()
