"""Hair and eye colour for TwinGAN's anime side: reading it, tagging the portraits, asking for it.

The judge is the project's anime hair/eye classifier (`weights/acgan-classifier`, trained on the
64×64 tight face crops of `anime_tags`). A selfie2anime portrait frames more than a face, so the
judge reads `FACE_CROP` of it, the square that matched the anime_tags framing best: of 40 squares
tried on 300 training portraits (sides 0.45 to 1 of the portrait, centred across, at 0.35 to 0.58 of
its height), side 11/16 centred at 0.47 of the height gave the judge its highest mean confidence
(hair 0.64, eyes 0.66; the whole portrait 0.60 and 0.56), and its crops look like anime_tags faces
(eyes near mid-height, chin at the bottom edge).

"Keep" is a request of its own: no colour offset, so the translation carries the photo's colours
through as the unconditioned model does; training asks for it a quarter of the time. Reading the
colour off the photo instead failed: on 30 held-out photos (20 selfies, 10 UTKFace faces) the judge
named the hair colour seen by eye for 4 (its face region; skin reads white, gray or pink), 5 (the
shipped model's translation), 8 (the whole photo, natural colours only); a pixel rule above the
detected face 10.

    tags = portrait_tags(files)                   # {path: Tag}, cached per classifier weights
    hair, eyes = colour_request("green", "keep")  # names → index tensors for TwinGAN(colours=…)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.hub import WEIGHTS_DIR
from cartoon.vgg import cache_dir

KEEP = "keep"  # a hair or eye "colour": the photo's own, carried through as the translation draws it
CLASSIFIER_DIR = WEIGHTS_DIR / "acgan-classifier"  # cartoon.acgan.evaluate's, not imported from there: it loads the FID stack
COLOUR_CLASSES = (len(HAIR_COLOURS), len(EYE_COLOURS))
FACE_CROP = (5 / 32, 1 / 8, 11 / 16)  # left, top, side, as shares of the portrait's side: whole pixels at 64², 128², 256²
JUDGE_SIDE = 64  # the classifier's input
JUDGE_SHIFT = 4  # pixels the training term moves the face region by, the classifier's own training shift
TAGGING_SIDE = 128  # portraits are tagged at this size, whatever the model's, so one cache serves every run
TAGGING_BATCH = 64


def face_region(images: torch.Tensor) -> torch.Tensor:
    """The judge's view of (N, 3, R, R) portraits: `FACE_CROP`, resized to 64² (differentiable)."""
    side = images.shape[-1]
    left, top, size = (round(share * side) for share in FACE_CROP)
    face = images[:, :, top : top + size, left : left + size]
    # float: antialiased resizing has no bfloat16 kernel on the CPU
    return F.interpolate(face.float(), size=JUDGE_SIDE, mode="bilinear", antialias=True, align_corners=False)


class ColourJudge(nn.Module):
    """The frozen hair/eye classifier reading portraits of any size: (hair logits, eye logits)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)

    def train(self, mode: bool = True):  # frozen: its batch norms always use their running statistics
        return super().train(False)

    def forward(self, images: torch.Tensor, shift: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """With `shift`, the face region is moved by up to that many pixels and mirrored at random, as the
        classifier was trained: a translation cannot pass with a pattern tuned to one exact crop."""
        face = face_region(images)
        if shift:
            from cartoon.acgan.evaluate import random_shift

            face = random_shift(face, shift)
        return self.classifier(face)

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The colours it reads, (hair, eyes) class indices."""
        hair, eyes = self(images)
        return hair.argmax(1), eyes.argmax(1)


def load_judge(folder=CLASSIFIER_DIR) -> ColourJudge:
    from cartoon.acgan.evaluate import load_classifier

    return ColourJudge(load_classifier(Path(folder)))


def keep_index(kind: str) -> int:
    """The "keep" index of hair or eyes: one past the colours."""
    return len(HAIR_COLOURS if kind == "hair" else EYE_COLOURS)


def colour_loss(judge: ColourJudge, images: torch.Tensor, colours: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the judge's reading of `images` against the (hair, eyes) asked for, the two summed;
    images whose colour is kept are not judged on it."""
    total = images.new_zeros((), dtype=torch.float)
    for logits, asked, kind in zip(judge(images, shift=JUDGE_SHIFT), colours, ("hair", "eyes")):
        judged = asked != keep_index(kind)
        if judged.any():
            total = total + F.cross_entropy(logits[judged].float(), asked[judged])
    return total


def random_colours(count: int, device="cpu", keep_share: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Requests for a batch: each attribute kept with probability `keep_share`, else any colour alike,
    however rare in the portraits."""
    requests = []
    for kind, classes in zip(("hair", "eyes"), COLOUR_CLASSES):
        asked = torch.randint(classes, (count,))
        requests.append(torch.where(torch.rand(count) < keep_share, keep_index(kind), asked).to(device))
    return tuple(requests)


def colour_index(name: str, kind: str) -> int:
    """The index of a hair (`kind` "hair") or eye ("eyes") colour name or of "keep", or a ValueError naming the choices."""
    names = HAIR_COLOURS if kind == "hair" else EYE_COLOURS
    if name == KEEP:
        return keep_index(kind)
    if name not in names:
        raise ValueError(f"unknown {kind} colour {name!r}; choose {KEEP!r} or one of {', '.join(names)}")
    return names.index(name)


def colour_request(hair: str = KEEP, eyes: str = KEEP) -> tuple[torch.Tensor, torch.Tensor]:
    """(hair, eyes) index tensors of shape (1,), for `TwinGAN(..., colours=)`, from colour names or "keep"."""
    return torch.tensor([colour_index(hair, "hair")]), torch.tensor([colour_index(eyes, "eyes")])


class Tag(NamedTuple):
    hair: int
    eyes: int
    hair_confidence: float  # the judge's softmax probability of its reading
    eye_confidence: float


def weights_fingerprint(folder=CLASSIFIER_DIR) -> str:
    """Names the classifier's weights: tags read by other weights are not reused."""
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()[:16]


def tags_cache(folder=CLASSIFIER_DIR) -> Path:
    return cache_dir() / "twingan-colour-tags" / f"{weights_fingerprint(folder)}.json"


@torch.no_grad()
def tag_images(judge: ColourJudge, files) -> list[Tag]:
    from cartoon.twingan import square_tensor

    tags = []
    for start in range(0, len(files), TAGGING_BATCH):
        hair_logits, eye_logits = judge(torch.cat([square_tensor(f, TAGGING_SIDE) for f in files[start : start + TAGGING_BATCH]]))
        (hair_confidence, hair), (eye_confidence, eyes) = (logits.softmax(1).max(1) for logits in (hair_logits, eye_logits))
        tags += [Tag(*row) for row in zip(hair.tolist(), eyes.tolist(), hair_confidence.tolist(), eye_confidence.tolist())]
    return tags


def portrait_tags(files, folder=CLASSIFIER_DIR) -> dict[Path, Tag]:
    """The judge's (hair, eyes) reading of each portrait, and its confidence, keyed by the files given.

    Read once per classifier weights and kept in the cache folder (`cartoon.vgg.cache_dir`), outside
    git; portraits not yet in the cache are read and added.
    """
    files = [Path(f) for f in files]
    path = tags_cache(folder)
    cached = json.loads(path.read_text()) if path.is_file() else {}
    missing = [f for f in files if str(f.resolve()) not in cached]
    if missing:
        cached |= {str(f.resolve()): list(tag) for f, tag in zip(missing, tag_images(load_judge(folder), missing))}
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(cached))
        temporary.replace(path)  # whole or not at all: a killed run leaves no half-written cache
    return {f: Tag(*cached[str(f.resolve())]) for f in files}


def colours_for(model, hair: str = KEEP, eyes: str = KEEP, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The colour request a TwinGAN `model` is given for hair and eye colour names, None when both are kept.

    ValueError for an unknown name, and for a colour asked of weights not conditioned on colour or of an
    anime → human translation (colour is the anime side's)."""
    request = colour_request(hair, eyes)
    if hair == KEEP and eyes == KEEP:
        return None
    if reverse:
        raise ValueError("hair and eye colours are asked of the anime side: keep both for anime → human")
    if getattr(model, "colour_classes", None) is None:
        raise ValueError("these TwinGAN weights are not conditioned on colour: hair and eyes can only be 'keep'")
    return request
