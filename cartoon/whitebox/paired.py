"""Two white-box evaluations read paired: the same held-out photos through two models, per group.

    python -m cartoon.whitebox.paired runs/exp-wbcel-U-19600/evaluation.json weights/whitebox-cel/evaluation.json

Each argument is a `cartoon.whitebox.evaluate` report (its per-photo records). Every figure is
given as candidate − reference, with a 90% bootstrap interval in which the same photos are drawn for
both models in each resample: the photos' own spread, which dominates either model's interval, falls
out of the difference, so a change shows at a smaller size than two unpaired intervals could show.
Only figures that are known on the same photos whatever the model are paired (a photo without a
detected face has no skin or kept-face reading in either); the RetinaFace landmark distance, which
needs a face found in each cartoon, is left out. Ratios (edge, flat) are differences of the group's
ratios; the rest differences of means, and |lightening| the difference of the size of the group's
mean skin lightening (`with_level_error`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cartoon.whitebox.evaluate import INTERVAL, RACE_GROUPS, TARGET_GROUPS, group_keys, resample_picks, resampled_figures

# (figure, title, format, scale) in the order printed
FIGURES = [
    ("read_as_cartoon", "probe (points)", "+.1f", 100),
    ("edge_ratio", "edge", "+.3f", 1),
    ("flat_ratio", "flat", "+.3f", 1),
    ("face_kept", "faces kept (points)", "+.1f", 100),
    ("landmark_drift", "drift", "+.4f", 1),
    ("skin_shift", "skin ΔE", "+.2f", 1),
    ("skin_lightening", "lightening L*", "+.2f", 1),
    ("skin_level_error", "|lightening| L*", "+.2f", 1),
]
KEYS = [key for key, *_ in FIGURES]


def read_records(report: Path) -> list[dict]:
    return json.loads(Path(report).read_text())["results"]["whitebox"]["images"]


def with_level_error(figures: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`figures` and the size of the group's mean skin lightening, lighter or darker alike: a model
    that darkens a group's skin by 0.6 L* keeps its level no better than one that lightens it by 0.6."""
    if "skin_lightening" in figures:
        figures["skin_level_error"] = np.abs(figures["skin_lightening"])
    return figures


def paired_differences(candidate: list[dict], reference: list[dict], seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """{group: {figure: [difference, low, high]}}, candidate − reference, over the photos both read.

    Raises ValueError when the two reports did not read the same photos."""
    by_file = {record["file"]: record for record in reference}
    if sorted(by_file) != sorted(record["file"] for record in candidate):
        raise ValueError("the two evaluations read different photos: pair only reports of the same held-out set")
    groups: dict[str, list[tuple[dict, dict]]] = {}
    for record in candidate:
        for key in group_keys(record["groups"]):
            groups.setdefault(key, []).append((record, by_file[record["file"]]))
    differences = {}
    for name, pairs in groups.items():
        ours, theirs = (list(side) for side in zip(*pairs))
        everyone = np.arange(len(pairs))[None]  # the group itself, as one "resample"

        def change(picks):
            a, b = (with_level_error(resampled_figures(side, picks)) for side in (ours, theirs))
            return {key: a[key] - b[key] for key in KEYS if key in a and key in b}

        point, spread = change(everyone), change(resample_picks(len(pairs), seed))
        differences[name] = {key: [float(point[key][0]), *np.nanpercentile(spread[key], INTERVAL).tolist()] for key in point}
    return differences


def table(differences: dict[str, dict[str, list[float]]], groups=("all",) + TARGET_GROUPS + RACE_GROUPS) -> str:
    lines = [f"{'group':22}" + "".join(f" {title:>26}" for _, title, _, _ in FIGURES)]
    lines.append("-" * len(lines[0]))
    for name in groups:
        if name not in differences:
            continue
        cells = []
        for key, _, spec, scale in FIGURES:
            value = differences[name].get(key)
            cells.append("-" if value is None else "{} ({}, {})".format(*(format(v * scale, spec) for v in value)))
        lines.append(f"{name:22}" + "".join(f" {cell:>26}" for cell in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidate", type=Path, help="evaluation JSON of the model read")
    parser.add_argument("reference", type=Path, help="evaluation JSON of the model it is read against (e.g. what ships)")
    parser.add_argument("--output", type=Path, help="also write the differences as JSON")
    args = parser.parse_args(argv)
    differences = paired_differences(read_records(args.candidate), read_records(args.reference))
    print(f"{args.candidate} − {args.reference}, same photos; 90% paired bootstrap intervals\n{table(differences)}")
    if args.output:
        args.output.write_text(json.dumps({"candidate": str(args.candidate), "reference": str(args.reference),
                                           "differences": differences}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
