"""How cartoon-like and how faithful the white-box cartoonizer is on held-out photos, per group.

    python -m cartoon.whitebox.evaluate [--weights weights/whitebox] [--reference] [--output runs/whitebox_eval.json]

Each held-out photo (UTKFace and selfie2anime, never seen in training) is cartoonized whole and
compared with its cartoon. The look, measured at 256² (photo and cartoon each resized to 256×256):
- luminance gradient G: with luminance Y = 0.299 R + 0.587 G + 0.114 B on the 0–255 scale, G is
  the magnitude of the forward differences, G[i, j] = √((Y[i, j+1] − Y[i, j])² + (Y[i+1, j] − Y[i, j])²),
  over the 255×255 pixels that have both neighbours;
- flat ratio: the share of pixels with G < 2 (flat colour regions), cartoon ÷ photo;
- edge ratio: the 97th percentile of G (the strength of the strongest lines), cartoon ÷ photo.
  A blur raises the flat ratio too, but lowers this one: a cartoon needs both.
- probe share: the share of cartoons that a cartoon-vs-photo probe on frozen VGG16 features
  (`cartoon.whitebox.probe`) reads as cartoon; it was trained to call blurred and bilateral-smoothed
  photos photos, so smoothing alone cannot pass it. Its own cross-validated accuracy per kind of
  image is printed and saved beside the figures.
The person kept:
- landmark distance: mean distance between the photo's and the cartoon's 5 RetinaFace landmarks,
  in units of the photo's eye distance (0 = the face kept its exact shape and place);
- face kept: share of photos with a face whose cartoon still has one detected at the same place;
- landmark drift: how far the cartoon moved the photo's landmarks, read without a detector on the
  cartoon (`cartoon.whitebox.likeness`). RetinaFace reads drawn faces with a bias of its own: a
  posterise-and-ink filter cartoon, whose pixels all stay in place, reads ~0.16 from its photo. So
  each landmark found on the photo is followed into the cartoon by matching a patch (0.7 eye
  distance a side) of the photo's luminance-gradient map against the cartoon's within ±0.3 eye
  distance, and the mean offset is given in eye distances. Filters that keep pixels in place read
  ~0, a face shifted by 0.05 eye distance reads 0.05. It sees where structure went, not whether it
  kept its shape: beside it, structure match is the mean correlation at the matches (1: the same).
  Measured for every photo with a face, whether or not the detector finds one in the cartoon;
  it has no target of issue 45 yet.
- skin tone kept: the cel style's generator pulls skin of every tone toward the cartoon set's pink,
  and lightens darker skin most, which no figure above sees. From the photo's landmarks
  (`cartoon.whitebox.likeness`), the median CIELAB colour of the skin between eyes and mouth in
  photo and cartoon (medians, so drawn lines and highlights do not decide it): skin shift is the
  CIE76 ΔE between them, skin lightening the signed cartoon L* − photo L* (positive: the cartoon
  made the skin lighter). UTKFace rows by race show a change that falls on some skin more than on
  the rest. No target.
RetinaFace alone is used (no MTCNN fallback), so every figure comes from one detector.

Ratios per group are ratios of the group's means, not means of per-photo ratios (which a few
photos with almost no edges would dominate). Beside each figure, a 90% bootstrap interval over
the group's photos. Issue 45's targets hold in every group: edge ratio ≥ 1.5, flat ratio ≥ 1.3,
probe share ≥ 90%, landmark distance ≤ 0.05, faces kept ≥ 98%.

`--reference` adds the same figures for OpenCV's untrained stylization filter, a posterise-and-ink
filter cartoon, the photo re-encoded as JPEG (how much landmarks move from detector noise alone),
a Gaussian blur and bilateral smoothing. The last two must miss the probe target and the blur the
edge target too: they are the check that these measures cannot be passed by smoothing a photo,
as the filter cartoon is the check that a drawn look on a real face can pass them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from cartoon import data
from cartoon.faces import detect_faces
from cartoon.training import set_threads
from cartoon.whitebox import colour, likeness
from cartoon.whitebox import probe as cartoon_probe
from cartoon.whitebox.reference_filters import REFERENCES

SIZE = likeness.SIZE  # the look and the drift read the same 256² images
LUMA = np.array(colour.LUMA)
FLAT_GRADIENT = 2.0  # below this G (0–255 luminance per pixel) a pixel counts as flat
EDGE_PERCENTILE = 97
METRICS = ("landmark_distance", "face_kept", "read_as_cartoon", "landmark_drift", "structure_match", "skin_shift", "skin_lightening")
RATIOS = {"flat_ratio": ("cartoon_flat", "photo_flat"), "edge_ratio": ("cartoon_edge", "photo_edge")}
# A cartoon face counts as the photo's face when their boxes overlap at least this much (IoU).
SAME_FACE_IOU = 0.3
BOOTSTRAP_RESAMPLES = 2000
INTERVAL = (5, 95)  # percentiles of the bootstrap: a 90% interval
# (summary key, short name, at least or at most, threshold): issue 45, in every TARGET_GROUPS row
TARGETS = [
    ("edge_ratio", "edge", ">=", 1.5),
    ("flat_ratio", "flat", ">=", 1.3),
    ("read_as_cartoon", "probe", ">=", 0.9),
    ("landmark_distance", "landmarks", "<=", 0.05),
    ("face_kept", "faces", ">=", 0.98),
]
TARGET_GROUPS = ("selfie2anime", "UTKFace male", "UTKFace female", f"UTKFace {data.CHILD}", f"UTKFace {data.OLDER}")
RACE_GROUPS = tuple(f"UTKFace {race}" for race in data.RACES)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="a saved Generator folder (config.json + model.safetensors); default: the default style's "
                        "registered model (cartoon.whitebox.default_style; --keep-colour is not implied)")
    parser.add_argument("--random-weights", action="store_true", help="an untrained Generator (to try the script before weights exist)")
    parser.add_argument("--output", default="runs/whitebox_eval.json", help="JSON with per-group figures and per-image records")
    parser.add_argument("--limit", type=int, default=0, help="at most this many photos per dataset (0: all held-out photos)")
    parser.add_argument("--reference", action="store_true",
                        help="also measure OpenCV stylization, a JPEG re-encoding (detector noise), a Gaussian blur and bilateral smoothing")
    parser.add_argument("--probe-images", type=int, default=0,
                        help="train the probe on this many images per folder (0: its defaults, every held-out cartoon and 200 photos a folder)")
    parser.add_argument("--probe-posterised", action="store_true",
                        help="train the probe with colour-quantised photos among its negatives, so a posteriser alone cannot pass")
    parser.add_argument("--keep-colour", action="store_true",
                        help="restore the photo's hues under each cartoon (cartoon.whitebox.colour), as a style with keep_colour does")
    parser.add_argument("--keep-luma", type=int, metavar="RADIUS",
                        help="with --keep-colour: the photo's luminance too, box-averaged at this radius of the correction's 128 px")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.keep_luma is not None and (args.keep_luma < 1 or not args.keep_colour):
        parser.error("--keep-luma takes a radius of at least 1, and --keep-colour with it")
    return args


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
        photos.append((path, {"dataset": "UTKFace", "gender": person["gender"], "age": band, "race": data.RACES[person["race"]]}))
    for path in data.split(data.SELFIE_PHOTOS)[1][: limit or None]:
        # selfie2anime's photos are all of women, adults in practice (the dataset README)
        photos.append((path, {"dataset": "selfie2anime", "gender": "female", "age": "adult (13-59)"}))
    return photos


def luminance_gradient(image: Image.Image) -> np.ndarray:
    """G of the module docstring: forward-difference gradient magnitude of the 256² luminance."""
    luminance = cartoon_probe.resized(image, SIZE).astype(np.float64) @ LUMA
    across = luminance[:-1, 1:] - luminance[:-1, :-1]
    down = luminance[1:, :-1] - luminance[:-1, :-1]
    return np.hypot(across, down)


def flat_share(gradient: np.ndarray) -> float:
    return float((gradient < FLAT_GRADIENT).mean())


def edge_strength(gradient: np.ndarray) -> float:
    return float(np.percentile(gradient, EDGE_PERCENTILE))


def box_iou(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(photo: Image.Image, cartoon: Image.Image, photo_faces=None) -> dict:
    """Look and likeness figures for one photo and its cartoon (face figures None without a face in the photo).

    `photo_faces`: the photo's RetinaFace detections when the caller already has them.
    """
    photo_gradient, cartoon_gradient = luminance_gradient(photo), luminance_gradient(cartoon)
    record = {
        "photo_flat": flat_share(photo_gradient),
        "cartoon_flat": flat_share(cartoon_gradient),
        "photo_edge": edge_strength(photo_gradient),
        "cartoon_edge": edge_strength(cartoon_gradient),
        "landmark_distance": None,
        "face_kept": None,
        "landmark_drift": None,
        "structure_match": None,
        "skin_shift": None,
        "skin_lightening": None,
    }
    if photo_faces is None:
        photo_faces = detect_faces(photo, max_faces=1, fallback=False)
    if not photo_faces:
        return record
    face = photo_faces[0]
    record |= likeness.drift_figures(photo, cartoon, face.landmarks) | likeness.skin_figures(photo, cartoon, face.landmarks)
    matches = [f for f in detect_faces(cartoon, fallback=False) if box_iou(f.box, face.box) >= SAME_FACE_IOU]
    record["face_kept"] = float(bool(matches))
    if matches:
        match = max(matches, key=lambda f: box_iou(f.box, face.box))
        eyes = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
        record["landmark_distance"] = float(np.linalg.norm(match.landmarks - face.landmarks, axis=1).mean() / max(eyes, 1.0))
    return record


def resample_picks(count: int, seed: int = 0) -> np.ndarray:
    """(BOOTSTRAP_RESAMPLES, count) indices: a group's photos resampled with replacement."""
    return np.random.default_rng(seed).integers(0, count, size=(BOOTSTRAP_RESAMPLES, count))


def resampled_figures(members: list[dict], picks: np.ndarray) -> dict[str, np.ndarray]:
    """Each ratio and mean figure of the group in every resample (a row of `picks`); NaN in a
    resample that drew no photo with that figure."""
    figures = {}
    for ratio, (cartoon_key, photo_key) in RATIOS.items():
        cartoon_values, photo_values = (np.array([m[key] for m in members]) for key in (cartoon_key, photo_key))
        figures[ratio] = cartoon_values[picks].sum(1) / np.maximum(photo_values[picks].sum(1), 1e-12)
    for metric in METRICS:
        values = np.array([np.nan if m.get(metric) is None else m[metric] for m in members])
        known = ~np.isnan(values)
        if known.any():
            totals, counts = np.nan_to_num(values)[picks].sum(1), known[picks].sum(1)
            figures[metric] = np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)
    return figures


def bootstrap_intervals(members: list[dict], seed: int = 0) -> dict[str, list[float]]:
    """90% intervals of each ratio and mean figure, over the resamples that have it."""
    figures = resampled_figures(members, resample_picks(len(members), seed))
    return {name: np.nanpercentile(samples, INTERVAL).tolist() for name, samples in figures.items()}


def missed_targets(row: dict) -> list[str]:
    """Short names of the targets this row misses; a figure that could not be measured misses."""
    missed = []
    for key, name, direction, threshold in TARGETS:
        value = row.get(key)
        if value is None or (value < threshold if direction == ">=" else value > threshold):
            missed.append(name)
    return missed


def group_keys(groups: dict) -> list[str]:
    """The rows a photo counts in, from its groups (`held_out_photos`)."""
    keys = ["all", groups["dataset"]]
    if groups["dataset"] == "UTKFace":
        keys += [f"UTKFace {groups['gender']}", f"UTKFace {groups['age']}", f"UTKFace {groups['gender']} {groups['age']}"]
        if "race" in groups:  # records written before the race was kept have none
            keys.append(f"UTKFace {groups['race']}")
    return keys


def summarise(records: list[dict]) -> dict[str, dict]:
    """Figures per row: all, each dataset, UTKFace by gender, by age band, both, and by race."""
    genders, bands = ("male", "female"), data.AGE_BANDS
    names = ["all", "selfie2anime", "UTKFace"] + [f"UTKFace {g}" for g in genders] + [f"UTKFace {b}" for b in bands]
    names += [f"UTKFace {g} {b}" for g in genders for b in bands] + list(RACE_GROUPS)
    rows: dict[str, list[dict]] = {name: [] for name in names}
    for record in records:
        for key in group_keys(record["groups"]):
            rows[key].append(record)
    summary = {}
    for name, members in rows.items():
        if not members:
            continue
        row = {"photos": len(members), "photos_with_face": sum(m["face_kept"] is not None for m in members)}
        for metric in METRICS:
            values = [m[metric] for m in members if m.get(metric) is not None]
            row[metric] = statistics.fmean(values) if values else None
            if metric in ("landmark_distance", "landmark_drift"):
                row[f"{metric}_median"] = statistics.median(values) if values else None
        for ratio, (cartoon_key, photo_key) in RATIOS.items():
            photo_total = sum(m[photo_key] for m in members)
            row[ratio] = sum(m[cartoon_key] for m in members) / photo_total if photo_total else None
        row["interval_90"] = bootstrap_intervals(members)
        row["targets_missed"] = missed_targets(row)
        summary[name] = row
    return summary


def figure(row: dict, key: str, spec: str, scale: float = 1, interval: bool = True) -> str:
    """A figure, with its bootstrap interval when asked: `1.52 (1.41-1.63)`."""
    if row.get(key) is None:
        return "-"
    text = format(row[key] * scale, spec)
    if interval and key in row["interval_90"]:
        low, high = (format(bound * scale, spec) for bound in row["interval_90"][key])
        text += f" ({low}-{high})"
    return text


def table(summary: dict[str, dict], groups=("all",) + TARGET_GROUPS + RACE_GROUPS) -> str:
    columns = [  # (title, width, cell)
        ("photos", 6, lambda r: str(r["photos"])),
        ("faces", 5, lambda r: str(r["photos_with_face"])),
        ("flat ≥1.3", 18, lambda r: figure(r, "flat_ratio", ".2f")),
        ("edge ≥1.5", 18, lambda r: figure(r, "edge_ratio", ".2f")),
        ("probe ≥90%", 16, lambda r: figure(r, "read_as_cartoon", ".0f", 100)),
        ("landmarks ≤.05", 21, lambda r: figure(r, "landmark_distance", ".3f")),
        ("drift", 21, lambda r: figure(r, "landmark_drift", ".3f")),
        ("match", 5, lambda r: figure(r, "structure_match", ".2f", interval=False)),
        ("kept ≥98%", 9, lambda r: figure(r, "face_kept", ".1f", 100, interval=False)),
        ("skin ΔE", 7, lambda r: figure(r, "skin_shift", ".1f", interval=False)),
        ("ΔL*", 5, lambda r: figure(r, "skin_lightening", "+.1f", interval=False)),
        ("targets", 7, lambda r: "met" if not r["targets_missed"] else "missed: " + ", ".join(r["targets_missed"])),
    ]
    header = f"{'group':22}" + "".join(f" {title:>{width}}" for title, width, _ in columns)
    lines = [header, "-" * len(header)]
    for name in groups:
        if name in summary:
            lines.append(f"{name:22}" + "".join(f" {cell(summary[name]):>{width}}" for _, width, cell in columns))
    return "\n".join(lines)


def probe_table(probe: cartoon_probe.CartoonProbe) -> str:
    lines = [f"cartoon probe, {probe.settings.folds}-fold cross-validated: share judged right", f"{'images':18} {'count':>6} {'right':>7}"]
    lines += [f"{kind:18} {a['images']:6d} {a['accuracy']:7.1%}" for kind, a in probe.accuracy.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    from cartoon.whitebox import STYLES, cartoonize, default_style

    generator = load_generator(args)
    settings = cartoon_probe.ProbeSettings()
    if args.probe_images:
        settings = cartoon_probe.ProbeSettings(cartoons_per_folder=args.probe_images, photos_per_folder=args.probe_images)
    settings = dataclasses.replace(settings, posterised_negatives=args.probe_posterised)
    probe = cartoon_probe.trained_probe(settings)
    print(probe_table(probe))
    methods = {"whitebox": lambda photo: cartoonize(photo, model=generator, keep_colour=args.keep_colour, luma_radius=args.keep_luma)}
    if args.reference:
        methods |= REFERENCES
    records = {name: [] for name in methods}
    for path, groups in tqdm(held_out_photos(args.limit), desc="evaluate", unit="photo"):
        photo = Image.open(path).convert("RGB")
        photo_faces = detect_faces(photo, max_faces=1, fallback=False)
        cartoons = {name: method(photo) for name, method in methods.items()}
        judged = probe.p_cartoon(list(cartoons.values()))
        for (name, cartoon), p_cartoon in zip(cartoons.items(), judged):
            record = {"file": path.name, "groups": groups, **compare(photo, cartoon, photo_faces)}
            record |= {"p_cartoon": float(p_cartoon), "read_as_cartoon": float(p_cartoon > 0.5)}
            records[name].append(record)
    results = {}
    for name, method_records in records.items():
        summary = summarise(method_records)
        missed = {group: summary[group]["targets_missed"] for group in TARGET_GROUPS if group in summary}
        verdict = "meets every target in every group" if not any(missed.values()) else "misses targets"
        print(f"\n{name}: {verdict}\n{table(summary)}")
        results[name] = {"meets_targets": not any(missed.values()), "summary": summary, "images": method_records}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model = "random weights" if args.random_weights else args.weights or f"registry: {STYLES[default_style()].model}"
    model += (f", photo's colours and luminance (radius {args.keep_luma}) kept" if args.keep_luma is not None else ", photo's colours kept") if args.keep_colour else ""
    targets = {key: f"{direction} {threshold}" for key, _, direction, threshold in TARGETS}
    report = {
        "model": model,
        "size": SIZE,
        "targets": {"groups": list(TARGET_GROUPS), "figures": targets},
        "probe": {"settings": dataclasses.asdict(probe.settings), "cross_validated_accuracy": probe.accuracy},
        "results": results,
    }
    output.write_text(json.dumps(report, indent=1))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
