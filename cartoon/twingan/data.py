"""TwinGAN's training data: two folders of faces, human photos and anime portraits, and how a run names them.

With the project's own data folders only their train split is used (`cartoon.data.split`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader
from torchvision import transforms

from cartoon import data
from cartoon.data import ImageFolder, forever
from cartoon.training import seed_everything


def training_files(folder) -> list:
    """The train split of a project data folder; every image of any other folder."""
    folder = Path(folder).resolve()
    for known in data.HOLDOUT:
        if known.resolve() == folder:
            return data.split(known)[0]
    return data.images_in(folder)


class TaggedImages(ImageFolder):
    """Portraits with their colour tags: (image, hair, eyes), a tag read with less than `min_confidence`
    given as "keep" (`cartoon.twingan.colour`), so a doubtful reading teaches no colour."""

    def __init__(self, files, transform, min_confidence: float):
        from cartoon.twingan.colour import keep_index, portrait_tags

        super().__init__(files=files, transform=transform)
        tags = portrait_tags(self.files).values()
        self.hair = torch.tensor([t.hair if t.hair_confidence >= min_confidence else keep_index("hair") for t in tags])
        self.eyes = torch.tensor([t.eyes if t.eye_confidence >= min_confidence else keep_index("eyes") for t in tags])

    def __getitem__(self, index):
        return super().__getitem__(index), self.hair[index], self.eyes[index]


def face_dataset(folders, resolution: int, tag_confidence: float | None = None):
    """Faces of `folders` as training sees them; with `tag_confidence`, each with its colour tags (`TaggedImages`)."""
    transform = transforms.Compose([
        transforms.Resize(resolution, antialias=True),
        transforms.CenterCrop(resolution),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * 3, [0.5] * 3),
    ])
    if tag_confidence is not None:
        return ConcatDataset([TaggedImages(training_files(f), transform, tag_confidence) for f in folders])
    return ConcatDataset([ImageFolder(files=training_files(f), transform=transform) for f in folders])


def with_training_data(args, recorded: dict | None = None) -> argparse.Namespace:
    """`args` with the data flags left unset (--photos, --anime, --batch-size) filled from `recorded`, a run's
    own as its checkpoint names them, else from the defaults: the selfie2anime photos with UTKFace, its
    drawings, batches of 8. Only these are taken from `recorded`: an older one also names the portraits'
    framing, which the trainer no longer has."""
    defaults = {"photos": [str(data.SELFIE_PHOTOS), str(data.UTKFACE)], "anime": [str(data.SELFIE_ANIME)], "batch_size": 8}
    recorded = recorded or {}
    return argparse.Namespace(**{**vars(args), **{name: recorded.get(name, default) for name, default in defaults.items()
                                                  if getattr(args, name) is None}})


def training_data(args) -> dict:
    """What a checkpoint records of a run's data."""
    return {"photos": args.photos, "anime": args.anime, "batch_size": args.batch_size}


def anime_batch(batch, device) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """A batch of anime portraits on `device` and, if tagged, their (hair, eyes) tags (else None)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True), None
    images, hair, eyes = batch
    return images.to(device, non_blocking=True), (hair.to(device), eyes.to(device))


def anime_tag_confidence(args) -> float | None:
    """The judge's confidence below which an anime tag is "keep" in a colour-conditioned run (None: no tags)."""
    return args.tag_confidence if getattr(args, "colour_condition", False) else None


def training_batches(args, resolution: int):
    """Endless shuffled training batches of photos and of anime portraits, as training draws them (the
    anime ones (images, hair, eyes) in a colour-conditioned run)."""
    seed_everything(args.seed)
    datasets = [face_dataset(args.photos, resolution), face_dataset(args.anime, resolution, anime_tag_confidence(args))]
    # A folder smaller than a batch gives one short batch per epoch, as in training, not none.
    return tuple(forever(DataLoader(faces, args.batch_size, shuffle=True, drop_last=len(faces) >= args.batch_size))
                 for faces in datasets)
