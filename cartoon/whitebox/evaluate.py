"""Quality figures of the white-box cartoonizer on held-out photos, split by gender and age.

    python -m cartoon.whitebox.evaluate [--weights weights/whitebox] [--output runs/whitebox_eval.json]

For each held-out photo (UTKFace and selfie2anime, never seen in training) the whole photo is
cartoonized and compared with it:
- landmark distance: mean distance between the photo's and the cartoon's 5 RetinaFace landmarks,
  in units of the photo's eye distance (0 = the face kept its exact shape and place);
- face kept: share of photos with a face whose cartoon still has one detected at the same place;
- flattening: distinct colours (6 bits per channel) of the cartoon / of the photo (below 1:
  flatter colour regions) and Canny edge density of the cartoon / of the photo (how much line
  work survives or is added), each a ratio of the group's means.
RetinaFace alone is used (no MTCNN fallback), so every figure comes from one detector.
`--reference` adds, for scale, the same figures for OpenCV's untrained stylization filter and for
the photo re-encoded as JPEG (how much landmarks move from detector noise alone).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from cartoon import data
from cartoon.faces import detect_faces
from cartoon.training import set_threads

METRICS = ("landmark_distance", "face_kept")
# Colours are counted at 6 bits per channel: at 8 bits a mere blur *adds* colours (smooth
# gradients between JPEG blocks), which would read as the opposite of flattening.
COLOUR_BITS = 6
# Flattening per group is a ratio of means (cartoon / photo), not a mean of per-photo ratios, which
# a few photos with almost no edges would dominate.
RATIOS = {"colour_ratio": ("cartoon_colours", "photo_colours"), "edge_ratio": ("cartoon_edges", "photo_edges")}
# A cartoon face counts as the photo's face when their boxes overlap at least this much (IoU).
SAME_FACE_IOU = 0.3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="a saved Generator folder (config.json + model.safetensors); default: the registry's whitebox model")
    parser.add_argument("--random-weights", action="store_true", help="an untrained Generator (to try the script before weights exist)")
    parser.add_argument("--output", default="runs/whitebox_eval.json", help="JSON with per-group figures and per-image records")
    parser.add_argument("--limit", type=int, default=0, help="at most this many photos per dataset (0: all held-out photos)")
    parser.add_argument("--reference", action="store_true", help="also measure OpenCV's untrained stylization filter and a JPEG re-encoding (detector noise) on the same photos")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def load_generator(args) -> torch.nn.Module:
    from cartoon.whitebox.model import Generator

    if args.random_weights:
        torch.manual_seed(0)
        return Generator().eval()
    if args.weights:
        return Generator.from_pretrained(args.weights).eval()
    from cartoon.whitebox import default_model

    return default_model()


def held_out_photos(limit: int = 0) -> list[tuple[Path, dict]]:
    """(path, groups) of every held-out photo; groups name the rows it counts in."""
    photos = []
    for path in data.split(data.UTKFACE)[1][: limit or None]:
        person = data.utkface_attributes(path)
        band = data.age_band(person["age"])
        photos.append((path, {"dataset": "UTKFace", "gender": person["gender"], "age": band}))
    for path in data.split(data.SELFIE_PHOTOS)[1][: limit or None]:
        # selfie2anime's photos are all of women, adults in practice (the dataset README)
        photos.append((path, {"dataset": "selfie2anime", "gender": "female", "age": "adult (13-59)"}))
    return photos


def unique_colours(pixels: np.ndarray, bits: int = COLOUR_BITS) -> int:
    """Distinct colours with each channel cut to `bits` bits."""
    levels = pixels.astype(np.int32) >> (8 - bits)
    return len(np.unique(levels[..., 0] << 2 * bits | levels[..., 1] << bits | levels[..., 2]))


def edge_density(pixels: np.ndarray) -> float:
    return float((cv2.Canny(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), 100, 200) > 0).mean())


def box_iou(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(photo: Image.Image, cartoon: Image.Image) -> dict:
    """The four figures for one photo and its cartoon (face figures None without a face in the photo)."""
    photo_pixels, cartoon_pixels = np.asarray(photo), np.asarray(cartoon)
    record = {
        "photo_colours": unique_colours(photo_pixels),
        "cartoon_colours": unique_colours(cartoon_pixels),
        "photo_edges": edge_density(photo_pixels),
        "cartoon_edges": edge_density(cartoon_pixels),
        "landmark_distance": None,
        "face_kept": None,
    }
    photo_faces = detect_faces(photo, max_faces=1, fallback=False)
    if not photo_faces:
        return record
    face = photo_faces[0]
    matches = [f for f in detect_faces(cartoon, fallback=False) if box_iou(f.box, face.box) >= SAME_FACE_IOU]
    record["face_kept"] = float(bool(matches))
    if matches:
        match = max(matches, key=lambda f: box_iou(f.box, face.box))
        eyes = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
        record["landmark_distance"] = float(np.linalg.norm(match.landmarks - face.landmarks, axis=1).mean() / max(eyes, 1.0))
    return record


def summarise(records: list[dict]) -> dict[str, dict]:
    """Mean of each figure per row: all, each dataset, UTKFace by gender, by age band, and both."""
    genders, bands = ("male", "female"), data.AGE_BANDS
    names = ["all", "selfie2anime", "UTKFace"] + [f"UTKFace {g}" for g in genders] + [f"UTKFace {b}" for b in bands]
    names += [f"UTKFace {g} {b}" for g in genders for b in bands]
    rows: dict[str, list[dict]] = {name: [] for name in names}
    for record in records:
        groups = record["groups"]
        keys = ["all", groups["dataset"]]
        if groups["dataset"] == "UTKFace":
            keys += [f"UTKFace {groups['gender']}", f"UTKFace {groups['age']}", f"UTKFace {groups['gender']} {groups['age']}"]
        for key in keys:
            rows[key].append(record)
    summary = {}
    for name, members in rows.items():
        if not members:
            continue
        row = {"photos": len(members), "photos_with_face": sum(m["face_kept"] is not None for m in members)}
        for metric in METRICS:
            values = [m[metric] for m in members if m[metric] is not None]
            row[metric] = statistics.fmean(values) if values else None
            if metric == "landmark_distance":
                row["landmark_distance_median"] = statistics.median(values) if values else None
        for ratio, (cartoon_key, photo_key) in RATIOS.items():
            photo_total = sum(m[photo_key] for m in members)
            row[ratio] = sum(m[cartoon_key] for m in members) / photo_total if photo_total else None
        summary[name] = row
    return summary


def table(summary: dict[str, dict]) -> str:
    columns = [  # (title, key, width, format, scale)
        ("photos", "photos", 6, "d", 1), ("faces", "photos_with_face", 5, "d", 1),
        ("lmk dist", "landmark_distance", 8, ".3f", 1), ("median", "landmark_distance_median", 7, ".3f", 1),
        ("kept %", "face_kept", 7, ".1f", 100), ("colours", "colour_ratio", 8, ".3f", 1), ("edges", "edge_ratio", 6, ".2f", 1),
    ]
    header = f"{'group':30}" + "".join(f" {title:>{width}}" for title, _, width, _, _ in columns)
    lines = [header, "-" * len(header)]
    for name, row in summary.items():
        cells = [format(row[key] * scale, spec) if row[key] is not None else "-" for _, key, _, spec, scale in columns]
        lines.append(f"{name:30}" + "".join(f" {cell:>{width}}" for cell, (_, _, width, _, _) in zip(cells, columns)))
    return "\n".join(lines)


def opencv_stylization(photo: Image.Image) -> Image.Image:
    """A classic, untrained cartoon filter (OpenCV's edge-preserving stylization), as a reference."""
    return Image.fromarray(cv2.stylization(np.asarray(photo), sigma_s=60, sigma_r=0.45))


def jpeg_copy(photo: Image.Image, quality: int = 50) -> Image.Image:
    """The photo itself, re-encoded: how far landmarks move when nothing but noise changes."""
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    from cartoon.whitebox import cartoonize

    generator = load_generator(args)
    methods = {"whitebox": lambda photo: cartoonize(photo, model=generator)}
    if args.reference:
        methods["opencv stylization"] = opencv_stylization
        methods["photo as JPEG q50 (detector noise floor)"] = jpeg_copy
    records = {name: [] for name in methods}
    for path, groups in tqdm(held_out_photos(args.limit), desc="evaluate", unit="photo"):
        photo = Image.open(path).convert("RGB")
        for name, method in methods.items():
            records[name].append({"file": path.name, "groups": groups, **compare(photo, method(photo))})
    results = {}
    for name, method_records in records.items():
        summary = summarise(method_records)
        print(f"\n{name}\n{table(summary)}")
        results[name] = {"summary": summary, "images": method_records}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model = "random weights" if args.random_weights else args.weights or "registry: whitebox"
    output.write_text(json.dumps({"model": model, "results": results}, indent=1))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
