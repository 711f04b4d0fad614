"""Where the face sits in each of TwinGAN's domains, and the fixed crop that frames the anime
portraits as the photos are framed.

    python -m cartoon.twingan.framing     # measure 150 images of each train split; prints a crop

selfie2anime frames its portraits looser than its photos: RetinaFace on the train splits finds the
portraits' eyes 0.20 of the side apart and 0.40 of the way down, the photos' 0.27 apart and 0.35 down
(UTKFace's tight crops: 0.39 apart, 0.30 down). A critic that only ever sees the looser framing asks every
translation to shrink and lower the face, and a pose term asks it to stay where the photo has it: the
two pull against each other. `ANIME_CROP` cuts each portrait to the selfie photos' framing instead.
Training on portraits cut so lost its arm and left the trainer (docs/twingan-experiments.md); the
crop stays as a reference the evaluation can score against (`evaluate --anime-framing photos`), and
the app aligns every face in the photos' framing (`cartoon.twingan.FRAMING`). UTKFace's photos, half
the training photos, stay tighter than either.

RetinaFace finds about half the portraits (the more human-drawn ones), so the crop is fitted on those
and applied to all: a fixed crop, one of the two alignments issue 44 names.
"""

from __future__ import annotations

import argparse
import random

import numpy as np
from PIL import Image

from cartoon import data
from cartoon.images import open_image

# left, top, right, bottom as fractions of a portrait's side: `matching_crop` of 150 images of each
# train split (`main`, seed 0: 72 portraits found).
ANIME_CROP = (0.112, 0.126, 0.888, 0.902)
FRAMINGS = ("raw", "photos")  # the portraits as they are, or cut by ANIME_CROP


def framed(image: Image.Image, framing: str) -> Image.Image:
    """`image` as a portrait in `framing` (one of FRAMINGS) shows it."""
    if framing not in FRAMINGS:
        raise ValueError(f"unknown anime framing {framing!r}; choose one of: {', '.join(FRAMINGS)}")
    if framing == "raw":
        return image
    width, height = image.size
    left, top, right, bottom = ANIME_CROP
    x, y = round(left * width), round(top * height)  # sides rounded once, so a square portrait gives a square cut
    return image.crop((x, y, x + round((right - left) * width), y + round((bottom - top) * height)))


def face_geometry(files) -> dict:
    """Mean landmark geometry of the faces RetinaFace finds in `files`, as fractions of each image's side."""
    from cartoon.faces.detect import detect_faces

    points = []
    for file in files:
        image = open_image(file).image.convert("RGB")
        faces = detect_faces(image, max_faces=1, fallback=False)
        if faces:
            points.append(faces[0].landmarks / np.array(image.size, dtype=np.float64))
    if not points:
        raise ValueError("no face found in any of the files")
    points = np.stack(points)
    eyes, mouth = points[:, :2].mean(1), points[:, 3:].mean(1)
    return {"found": len(points), "of": len(files), "eye_centre": eyes.mean(0),
            "eye_distance": np.linalg.norm(points[:, 1] - points[:, 0], axis=1).mean(),
            "eyes_to_mouth": np.linalg.norm(mouth - eyes, axis=1).mean()}


def matching_crop(anime: dict, photos: dict) -> tuple[float, float, float, float]:
    """The square crop of a portrait whose face, resized to the crop's side, lands where the photos' does.

    Its side is the mean of the eye-distance and eyes-to-mouth ratios; it is centred left to right,
    since training flips every image at random, and placed top to bottom by the eyes' height.
    """
    side = (anime["eye_distance"] / photos["eye_distance"] + anime["eyes_to_mouth"] / photos["eyes_to_mouth"]) / 2
    top = anime["eye_centre"][1] - side * photos["eye_centre"][1]
    return (float(0.5 - side / 2), float(top), float(0.5 + side / 2), float(top + side))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=150, help="images drawn from each train split")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    geometry = {}
    for name, folder in (("photos", data.SELFIE_PHOTOS), ("anime", data.SELFIE_ANIME), ("utkface", data.UTKFACE)):
        files = data.split(folder)[0]
        geometry[name] = face_geometry(rng.sample(files, min(args.limit, len(files))))
        g = geometry[name]
        print(f"{name}: {g['found']} of {g['of']} found; eyes at {np.round(g['eye_centre'], 3).tolist()}, "
              f"{g['eye_distance']:.3f} apart, {g['eyes_to_mouth']:.3f} above the mouth")
    crop = matching_crop(geometry["anime"], geometry["photos"])
    print("crop framing the portraits as the selfie photos:", tuple(round(c, 3) for c in crop), f"(shipped: {ANIME_CROP})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
