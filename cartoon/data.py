"""The project's own datasets (`../shared/data`) and the held-out splits every evaluation uses.

Held-out files are chosen once, deterministically, and never reach any training script, so
the figures in model cards are measured on faces the models have not seen.
"""

from __future__ import annotations

import os
from pathlib import Path

from cartoon.training import IMAGE_EXTENSIONS, split_files

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
