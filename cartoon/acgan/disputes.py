"""Find training faces whose hair tag the faces themselves dispute, so a trainer can leave them out.

    nice python -m cartoon.acgan.disputes --output runs/acgan-disputes.csv     # ~15 min on one core
    python -m cartoon.stylegan.train --condition colours --disputes runs/acgan-disputes.csv ...

The tags come from an automatic tagger: the colour judge, trained on them, agrees with the tags
of held-out faces on only 89.5% of hair (white 77%, grey 78%, aqua 72%). A generator learns what
the tags mean, noise included, so its "white" is a grey-brown and its "pink" half crimson. Here
each training face is read by attribute classifiers that never saw it (k folds of the training
split, each classifier trained on the other folds), and the face is disputed when that
out-of-fold reading gives its tagged hair colour less than `--below` probability. The judge of
`cartoon.acgan.evaluate` is not used: it saw every training face, so it would keep its own
mistakes. Held-out faces are never read or listed.

The output CSV names every training face with its tags, the out-of-fold probability of each tag
and the colours read; a `disputed` column marks the ones a trainer's `--disputes` leaves out.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from cartoon.acgan.data import TaggedFaces, read_tags, split_tags
from cartoon.acgan.evaluate import tag_probabilities, train_classifier
from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.data import ANIME_TAGS
from cartoon.inception import from_uint8
from cartoon.training import set_threads


def out_of_fold(rows, held: TaggedFaces, folds: int = 2, epochs: int = 6, seed: int = 1, log=print):
    """Each row's (hair, eye) probabilities from a classifier trained on the other folds."""
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    hair = torch.zeros(len(rows), len(HAIR_COLOURS))
    eyes = torch.zeros(len(rows), len(EYE_COLOURS))
    for fold in range(folds):
        inside = order[fold::folds]
        outside = sorted(set(order) - set(inside))
        log(f"fold {fold + 1}/{folds}: training on {len(outside)} faces, reading {len(inside)}")
        model = train_classifier(TaggedFaces([rows[i] for i in outside]), held, epochs=epochs, seed=seed + fold, log=log)
        h, e = tag_probabilities(model, from_uint8(TaggedFaces([rows[i] for i in inside]).images))
        hair[inside], eyes[inside] = h, e
    return hair, eyes


def write_disputes(path: str | Path, rows, hair: torch.Tensor, eyes: torch.Tensor, below: float) -> int:
    """Write the CSV described in the module docstring; returns how many faces are disputed."""
    disputed = 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["file", "hair", "eyes", "p_hair", "p_eyes", "read_hair", "read_eyes", "disputed"])
        for (file, h, e), ph, pe in zip(rows, hair, eyes):
            flag = float(ph[h]) < below
            disputed += flag
            table.writerow([Path(file).name, HAIR_COLOURS[h], EYE_COLOURS[e], f"{float(ph[h]):.3f}", f"{float(pe[e]):.3f}",
                            HAIR_COLOURS[int(ph.argmax())], EYE_COLOURS[int(pe.argmax())], int(flag)])
    return disputed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ANIME_TAGS))
    parser.add_argument("--output", required=True, help="CSV to write")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--below", type=float, default=0.5, help="dispute a face when its hair tag reads below this probability")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    train_rows, held_rows = split_tags(read_tags(args.data))
    hair, eyes = out_of_fold(train_rows, TaggedFaces(held_rows), args.folds, args.epochs)
    disputed = write_disputes(args.output, train_rows, hair, eyes, args.below)
    by_colour = {name: 0 for name in HAIR_COLOURS}
    for (_, h, _), ph in zip(train_rows, hair):
        by_colour[HAIR_COLOURS[h]] += float(ph[h]) < args.below
    print(f"{disputed} of {len(train_rows)} training faces disputed: {by_colour}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
