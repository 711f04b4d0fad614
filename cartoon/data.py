"""Images for training and evaluation: folders as datasets, endless batches, and the project's own
datasets (`../shared/data`) with the held-out splits every evaluation uses.

Held-out files are chosen once, deterministically, and never reach any training script, so
the figures in model cards are measured on faces the models have not seen.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class ImageFolder(Dataset):
    """Every image below one or more folders, as float tensors in [-1, 1].

    `files` may be given instead of folders, to train on an explicit split.
    """

    def __init__(self, folders=(), transform=None, files=None):
        if files is None:
            files = [path for folder in folders for path in images_in(folder)]
        self.files = [Path(f) for f in files]
        if not self.files:
            raise FileNotFoundError(f"no images found in {', '.join(map(str, folders))}")
        self.transform = transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        image = Image.open(self.files[index]).convert("RGB")
        return self.transform(image) if self.transform else image


def split_files(files, holdout: int, seed: int = 0):
    """Deterministic (train, held-out) split of a file list; held-out files never reach training."""
    files = sorted(Path(f) for f in files)
    order = random.Random(seed).sample(range(len(files)), len(files))
    held = {files[i] for i in order[:holdout]}
    return [f for f in files if f not in held], [f for f in files if f in held]


def forever(loader: DataLoader):
    """Endless batches; reshuffles each epoch (and tells a DistributedSampler which epoch it is)."""
    if len(loader) == 0:  # it would otherwise spin for ever without yielding
        raise ValueError(f"fewer images than one batch of {loader.batch_size}, and incomplete batches are dropped")
    epoch = 0
    while True:
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


DATA_ROOT = Path(os.environ.get("CARTOON_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))

SELFIE_PHOTOS = DATA_ROOT / "selfie2anime" / "photo"
SELFIE_ANIME = DATA_ROOT / "selfie2anime" / "anime"
UTKFACE = DATA_ROOT / "utkface"
ANIME_TAGS = DATA_ROOT / "anime_tags"
# Google's Cartoon Set (CC-BY 4.0, credit "Cartoon Set, Google LLC"): flat fills and black outlines
CARTOONSET = DATA_ROOT / "cartoonset" / "images"

HOLDOUT = {SELFIE_PHOTOS: 100, SELFIE_ANIME: 200, UTKFACE: 300, CARTOONSET: 500}


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(train, held-out) files of SELFIE_PHOTOS, SELFIE_ANIME, UTKFACE or CARTOONSET.

    ANIME_TAGS is split per (hair, eyes) pair instead, by `cartoon.acgan.data`.
    """
    if folder not in HOLDOUT:
        raise ValueError(f"{folder} has no held-out split here; ANIME_TAGS is split by cartoon.acgan.data")
    return split_files(images_in(folder), HOLDOUT[folder], seed=0)


def utkface_attributes(path: Path) -> dict:
    """Age, gender and race from a UTKFace name `age_gender_race_datetime.jpg`."""
    age, gender, race = path.name.split("_")[:3]
    return {"age": int(age), "gender": "female" if gender == "1" else "male", "race": int(race)}


RACES = ("White", "Black", "Asian", "Indian", "Others")  # UTKFace's race labels 0–4, in order


CHILD, ADULT, OLDER = AGE_BANDS = ("child (<13)", "adult (13-59)", "older (60+)")


def age_band(age: int) -> str:
    return CHILD if age < 13 else ADULT if age < 60 else OLDER
