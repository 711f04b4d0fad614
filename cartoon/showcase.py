"""The side-by-side PNG a photo model's card shows: held-out faces of every group, photo | each model.

    python -m cartoon.showcase whitebox weights/whitebox runs/export -o card.png [--labels shipped new]
    python -m cartoon.showcase twingan weights/twingan runs/export -o card.png

Four rows, men, women, children and older people, of four held-out faces each (UTKFace spread
over its five race labels, and selfie2anime selfies among the women), so a look that works only
on some people shows. Each face is the photo followed by what every model folder makes of it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from cartoon import data
from cartoon.media import grid

GROUPS = ("men", "women", "children", "older")
PER_GROUP = 4
CELL = 160


def group_of(path: Path) -> str | None:
    """The showcase row of a held-out UTKFace photo, or None for teenagers (neither row's kind)."""
    person = data.utkface_attributes(path)
    band = data.age_band(person["age"])
    if band == data.CHILD:
        return "children"
    if band == data.OLDER:
        return "older"
    if person["age"] < 20:
        return None
    return "men" if person["gender"] == "male" else "women"


def held_out_portraits(per_group: int = PER_GROUP) -> dict[str, list[Path]]:
    """`per_group` held-out photos per row, the same ones on every call.

    UTKFace photos are taken in turn from each (race, gender) label, so each row spans skin tones
    and children and older people both sexes; half the women are selfie2anime selfies, the tab's
    most common kind of upload.
    """
    by_label: dict[str, dict[tuple, list[Path]]] = {group: {} for group in GROUPS}
    for path in data.split(data.UTKFACE)[1]:
        group, person = group_of(path), data.utkface_attributes(path)
        if group:
            by_label[group].setdefault((person["race"], person["gender"]), []).append(path)
    rows = {"women": data.split(data.SELFIE_PHOTOS)[1][: per_group // 2]}
    for group in GROUPS:
        picked = rows.setdefault(group, [])
        # (race 0, female), (1, male), (2, female), (3, male), …: a new race and the other sex each time
        labels = sorted(by_label[group], key=lambda label: ((label[0] + (label[1] == "male")) % 2, label[0]))
        queues = [list(by_label[group][label]) for label in labels]
        while len(picked) < per_group and any(queues):
            for queue in queues:
                if queue and len(picked) < per_group:
                    picked.append(queue.pop(0))
    return {group: rows[group] for group in GROUPS}


Transform = Callable[[Image.Image], Image.Image]


def side_by_side(models: dict[str, Transform], per_group: int = PER_GROUP, cell: int = CELL) -> Image.Image:
    """One row per group; each face shown as photo | models[name](photo), for every name in order."""
    names = ["photo", *models]
    rows = []
    for group, paths in held_out_portraits(per_group).items():
        tiles = []
        for path in paths:
            photo = Image.open(path).convert("RGB").resize((256, 256), Image.BICUBIC)
            pictures = [photo] + [transform(photo) for transform in models.values()]
            tiles.extend(picture.resize((cell, cell), Image.BICUBIC) for picture in pictures)
        rows.append(labelled(grid(tiles, columns=len(tiles), gap=2), group))
    header = grid([caption(name, cell) for name in names] * per_group, columns=len(names) * per_group, gap=2)
    return stacked([labelled(header, ""), *rows])


def stacked(rows: list[Image.Image], gap: int = 6) -> Image.Image:
    """Rows of different heights one under the other (`grid` wants equal cells)."""
    out = Image.new("RGB", (max(row.width for row in rows), sum(row.height for row in rows) + gap * (len(rows) - 1)), "white")
    y = 0
    for row in rows:
        out.paste(row, (0, y))
        y += row.height + gap
    return out


def caption(text: str, width: int, height: int = 22) -> Image.Image:
    tile = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(tile).text((4, 5), text, fill="black")
    return tile


def labelled(row: Image.Image, label: str, margin: int = 70) -> Image.Image:
    """The row with its group's name written in a left margin."""
    out = Image.new("RGB", (row.width + margin, row.height), "white")
    out.paste(row, (margin, 0))
    ImageDraw.Draw(out).text((4, row.height // 2 - 6), label, fill="black")
    return out


def transform_for(family: str, folder: str, keep_colour: bool | None = None) -> Transform:
    """What a saved model of `family` makes of a 256² face photo; `keep_colour` (white-box only)
    forces the colour correction on or off, where None decides by the folder (below)."""
    if family == "whitebox":
        from cartoon.whitebox import STYLES, cartoonize
        from cartoon.whitebox.model import Generator

        model = Generator.from_pretrained(folder).eval()
        # a style's own folder is drawn as the tab draws that style; any other folder as its generator alone
        if keep_colour is None:
            keep_colour = any(style.keep_colour and style.model == Path(folder).name for style in STYLES.values())
        return lambda photo: cartoonize(photo, model=model, keep_colour=keep_colour)
    if family == "twingan":
        from cartoon.twingan import anime_photo
        from cartoon.twingan.model import TwinGAN

        model = TwinGAN.from_pretrained(folder).eval()
        # the tab's default: the aligned face crop, translated
        return lambda photo: anime_photo(photo, mode="crop", model=model).image
    raise ValueError(f"unknown model family {family!r}: whitebox or twingan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family", choices=["whitebox", "twingan"])
    parser.add_argument("folders", nargs="+", help="saved model folders, one column each")
    parser.add_argument("--labels", nargs="+", help="column names (default: the folders' names)")
    parser.add_argument("-o", "--output", required=True, help="PNG to write")
    parser.add_argument("--keep-colour", choices=["auto", "on", "off"], default="auto",
                        help="white-box: the photo's colours kept in every column, in none, or (auto) as the tab draws a style's own folder")
    args = parser.parse_args(argv)
    keep_colour = {"auto": None, "on": True, "off": False}[args.keep_colour]
    labels = args.labels or [Path(folder).name for folder in args.folders]
    if len(labels) != len(args.folders):
        parser.error("give one label per folder")
    models = {label: transform_for(args.family, folder, keep_colour) for label, folder in zip(labels, args.folders)}
    side_by_side(models).save(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
