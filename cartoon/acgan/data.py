"""Tagged anime faces: a folder with `tags.csv` (`file,hair,eyes`) and the images it names.

The held-out split keeps a fixed number of faces of every (hair, eyes) pair, so evaluation
covers every colour equally and no held-out face ever reaches training.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.data import ANIME_TAGS
from cartoon.inception import from_uint8

HELD_OUT_PER_PAIR = 10


def read_tags(folder: str | Path) -> list[tuple[Path, int, int]]:
    """(image path, hair index, eye index) for every row of `folder/tags.csv`, sorted by path."""
    folder = Path(folder)
    table = folder / "tags.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} is missing: a tagged folder needs a CSV with columns file,hair,eyes")
    rows = []
    with open(table, newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                rows.append((folder / row["file"], HAIR_COLOURS.index(row["hair"]), EYE_COLOURS.index(row["eyes"])))
            except (KeyError, ValueError) as error:
                raise ValueError(f"{table}:{line}: expected known colours in columns file,hair,eyes ({error})") from None
    return sorted(rows)


def read_disputed(table: str | Path) -> set[str]:
    """The image names a `cartoon.acgan.disputes` table marks as disputed."""
    with open(table, newline="") as handle:
        return {row["file"] for row in csv.DictReader(handle) if row["disputed"] == "1"}


def split_tags(rows, per_pair: int = HELD_OUT_PER_PAIR, seed: int = 0):
    """Deterministic (train, held-out) rows: `per_pair` random faces of each (hair, eyes) pair held out."""
    by_pair: dict[tuple[int, int], list] = {}
    for row in sorted(rows):
        by_pair.setdefault((row[1], row[2]), []).append(row)
    rng = random.Random(seed)
    held = set()
    for pair in sorted(by_pair):
        held.update(rng.sample(by_pair[pair], min(per_pair, len(by_pair[pair]) // 2)))
    return [r for r in rows if r not in held], [r for r in rows if r in held]


class TaggedFaces(torch.utils.data.Dataset):
    """Faces decoded once into memory (13k 64×64 faces are 160 MB as uint8), with their labels."""

    def __init__(self, rows, size: int = 64):
        images = []
        for path, _, _ in rows:
            image = Image.open(path).convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BICUBIC)
            images.append(np.asarray(image))
        self.images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        self.hair = torch.tensor([r[1] for r in rows])
        self.eyes = torch.tensor([r[2] for r in rows])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return from_uint8(self.images[index]), self.hair[index], self.eyes[index]


def add_data_args(parser: argparse.ArgumentParser):
    """A trainer's flags for a tagged folder: which one, how much of it is held out, a limit for smoke runs.
    (`cartoon.acgan.train` still declares its own, written before these.)"""
    parser.add_argument("--data", default=str(ANIME_TAGS), help="folder with tags.csv (file,hair,eyes) and its images")
    parser.add_argument("--held-out-per-pair", type=int, default=HELD_OUT_PER_PAIR, help="faces per (hair, eyes) kept for evaluation")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N training faces only (tests, smoke runs)")
    parser.add_argument("--disputes", metavar="CSV", help="leave out the training faces this `cartoon.acgan.disputes` "
                        "table marks as disputed (hair tags that classifiers which never saw the face read otherwise)")


def training_faces(args: argparse.Namespace, size: int = 64) -> TaggedFaces:
    """The faces the `add_data_args` flags in `args` train on: the training split without `--disputes`, cut to `--limit`."""
    train_rows, _ = split_tags(read_tags(args.data), args.held_out_per_pair)
    if args.disputes:
        disputed = read_disputed(args.disputes)
        train_rows = [row for row in train_rows if row[0].name not in disputed]
    return TaggedFaces(train_rows[: args.limit or None], size)
