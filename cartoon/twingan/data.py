"""TwinGAN's training data: two folders of faces, human photos and anime portraits, and how a run names them.

With the project's own data folders only their train split is used (`cartoon.data.split`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from torch.utils.data import ConcatDataset, DataLoader
from torchvision import transforms

from cartoon import data
from cartoon.training import ImageFolder, forever, seed_everything


def training_files(folder) -> list:
    """The train split of a project data folder; every image of any other folder."""
    folder = Path(folder).resolve()
    for known in data.HOLDOUT:
        if known.resolve() == folder:
            return data.split(known)[0]
    return data.images_in(folder)


def face_dataset(folders, resolution: int):
    transform = transforms.Compose([
        transforms.Resize(resolution, antialias=True),
        transforms.CenterCrop(resolution),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * 3, [0.5] * 3),
    ])
    return ConcatDataset([ImageFolder(files=training_files(f), transform=transform) for f in folders])


def with_training_data(args, recorded: dict | None = None) -> argparse.Namespace:
    """`args` with the data flags left unset (--photos, --anime, --batch-size) filled from `recorded`,
    a run's own as its checkpoint names them, else from the defaults: the selfie2anime photos with
    UTKFace, its drawings, batches of 8."""
    defaults = {"photos": [str(data.SELFIE_PHOTOS), str(data.UTKFACE)], "anime": [str(data.SELFIE_ANIME)], "batch_size": 8,
                **(recorded or {})}
    return argparse.Namespace(**{**vars(args), **{name: value for name, value in defaults.items() if getattr(args, name) is None}})


def training_data(args) -> dict:
    """What a checkpoint records of a run's data."""
    return {"photos": args.photos, "anime": args.anime, "batch_size": args.batch_size}


def training_batches(args, resolution: int):
    """Endless shuffled training batches of photos and of anime portraits, as training draws them."""
    seed_everything(args.seed)
    datasets = [face_dataset(folders, resolution) for folders in (args.photos, args.anime)]
    # A folder smaller than a batch gives one short batch per epoch, as in training, not none.
    return tuple(forever(DataLoader(faces, args.batch_size, shuffle=True, drop_last=len(faces) >= args.batch_size))
                 for faces in datasets)
