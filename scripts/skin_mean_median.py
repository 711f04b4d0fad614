"""Skin lightening read two ways, as a mean and as a median, for white-box weights on held-out UTKFace photos.

The evidence behind arm V (docs/whitebox-experiments.md): a model can hold the skin region's mean L*
while its median, which `cartoon.whitebox.evaluate` reads, lightens, when darker lines drawn inside
the region pay for lighter skin around them. Each row: the mean and the median of cartoon L* − photo
L* over the region (colour kept, as the cel style is drawn), and the share of the cartoon's skin
pixels 15 L* or more under their median.

    python scripts/skin_mean_median.py --photos 200 shipped=weights/whitebox-cel V=runs/exp-wbcel-V-20600
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from cartoon.faces import detect_faces
from cartoon.whitebox import cartoonize
from cartoon.whitebox.evaluate import held_out_photos
from cartoon.whitebox.likeness import MIN_SKIN, lab_pixels, skin_region
from cartoon.whitebox.model import Generator

DARK_BELOW_MEDIAN = 15  # L*: a drawn line or shadow, not skin


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="LABEL=FOLDER")
    parser.add_argument("--photos", type=int, default=200, help="the first N held-out UTKFace photos")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    models = {label: Generator.from_pretrained(folder).eval() for label, folder in (m.split("=", 1) for m in args.models)}
    rows = defaultdict(list)
    photos = [(path, groups) for path, groups in held_out_photos() if groups["dataset"] == "UTKFace"][: args.photos]
    for path, groups in photos:
        photo = Image.open(path).convert("RGB")
        faces = detect_faces(photo, max_faces=1, fallback=False)
        if not faces:
            continue
        mask = skin_region(faces[0].landmarks, photo.size)
        if mask.sum() < MIN_SKIN:
            continue
        before = lab_pixels(photo, mask)[:, 0]
        for label, model in models.items():
            after = lab_pixels(cartoonize(photo, model=model, keep_colour=True), mask)[:, 0]
            figures = (after.mean() - before.mean(), np.median(after) - np.median(before),
                       (after < np.median(after) - DARK_BELOW_MEDIAN).mean())
            rows[label, groups["race"]].append(figures)
            rows[label, "all"].append(figures)
    print(f"{'model':10s} {'race':8s} {'photos':>6s} {'mean':>7s} {'median':>7s} {'dark share':>10s}")
    for (label, race), figures in sorted(rows.items()):
        mean, median, dark = np.mean(figures, axis=0)
        print(f"{label:10s} {race:8s} {len(figures):6d} {mean:+7.2f} {median:+7.2f} {dark:10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
