"""`python -m cartoon sheet INPUT_DIR -o sheet.html`: every model at a glance, for a reviewer.

One row per input photo: the photo, its cartoon in each installed white-box style, its anime
translation (TwinGAN, face crop) and its nearest look-alikes in the TwinGAN embedding; then ACGAN
avatars, a row per hair colour (eyes random) and a row per eye colour (hair random). The HTML is a
single file (images inlined as data URIs); a PNG of the same sheet is written beside it. A model
family without weights gets a note instead of its pictures.
Only the families' public inference functions are used.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from cartoon.images import ImageError, list_images, open_image

THUMB = 192  # longest side of a picture in the sheet
MATCH_THUMB = 72
AVATAR_SCALE = 2  # 64×64 faces shown at 128×128, nearest-neighbour
AVATARS_PER_COLOUR = 8
LABEL_HEIGHT = 18
GAP = 8


@dataclass
class Row:
    name: str
    photo: Image.Image
    cartoons: dict[str, Image.Image] = field(default_factory=dict)  # white-box style → cartoon
    anime: Image.Image | None = None
    matches: list[tuple[Image.Image, str]] = field(default_factory=list)  # (thumbnail, caption)
    notes: list[str] = field(default_factory=list)


@dataclass
class Sheet:
    rows: list[Row] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)  # a cartoon column each
    avatars: dict[str, list[Image.Image]] = field(default_factory=dict)  # "blue hair" → faces
    missing: dict[str, str] = field(default_factory=dict)  # family → why it shows nothing


def register(subparsers):
    parser = subparsers.add_parser("sheet", help="contact sheet of every model on a folder of photos (HTML + PNG)")
    parser.add_argument("input", help="folder of photos (searched recursively) or one photo")
    parser.add_argument("-o", "--output", default="sheet.html", help="HTML file; the PNG goes beside it")
    parser.add_argument("--max-images", type=int, default=24, help="use at most this many photos")
    parser.add_argument("--max-side", type=int, default=768, help="photos are scaled down to this longest side first")
    parser.add_argument("-k", type=int, default=4, help="look-alikes per gallery group")
    parser.add_argument("--gallery", help="look-alike gallery folder (default: the built-in one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the avatar grid")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.max_images < 1 or args.k < 1:
        raise SystemExit("--max-images and -k must be at least 1")
    try:
        files = list_images([args.input])[: args.max_images]
    except ImageError as error:
        raise SystemExit(str(error))
    if not files:
        raise SystemExit(f"no images found in {args.input}")
    sheet = build_sheet(files, k=args.k, gallery=args.gallery, max_side=args.max_side, seed=args.seed)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(to_html(sheet), encoding="utf-8")
    to_png(sheet).save(output.with_suffix(".png"))
    print(f"wrote {output} and {output.with_suffix('.png')}: {len(sheet.rows)} photos")
    for family, reason in sheet.missing.items():
        print(f"{family}: {reason}")
    return 0


def build_sheet(files: list[Path], k: int = 4, gallery=None, max_side: int = 768, seed: int = 0) -> Sheet:
    from tqdm import tqdm

    from cartoon.whitebox import offered_styles

    sheet = Sheet(styles=offered_styles())
    for path in tqdm(files, desc="sheet", unit="photo"):
        try:
            loaded = open_image(path, max_side=max_side)
        except ImageError as error:
            tqdm.write(f"skipped {path}: {error}")
            continue
        row = Row(path.name, loaded.image, notes=list(loaded.notes))
        _fill_cartoons(row, sheet.styles, sheet.missing)
        _fill_anime(row, sheet.missing, k, gallery)
        sheet.rows.append(row)
    _fill_avatars(sheet, seed)
    return sheet


def _fill_cartoons(row: Row, styles: list[str], missing: dict[str, str]) -> None:
    if "cartoon" in missing:
        return
    from cartoon.whitebox import cartoonize_photo

    for style in styles:
        try:
            result = cartoonize_photo(row.photo, mode="faces", strength=1.0, style=style)
        except FileNotFoundError as error:
            missing["cartoon"] = f"no white-box weights yet ({error})"
            return
        if not row.cartoons:  # every style finds the same faces: say so once
            row.notes += result.notes
        row.cartoons[style] = result.image


def _fill_anime(row: Row, missing: dict[str, str], k: int, gallery) -> None:
    if "anime" in missing:
        return
    from cartoon.twingan import anime_photo, lookalikes

    try:
        result = anime_photo(row.photo, mode="crop")
    except FileNotFoundError as error:
        missing["anime"] = f"no TwinGAN weights yet ({error})"
        missing["look-alikes"] = "they need the TwinGAN embedding"
        return
    row.anime = result.image
    if "look-alikes" in missing:
        return
    try:
        found = lookalikes(row.photo, k=k, gallery=gallery)
    except (FileNotFoundError, ImageError) as error:
        missing["look-alikes"] = str(error)
        return
    for group, matches in found.items():
        for match in matches:
            thumb = ImageOps.fit(open_image(match.path, max_side=512).image, (MATCH_THUMB, MATCH_THUMB))
            row.matches.append((thumb, f"{group} {match.distance:.2f}"))


def _fill_avatars(sheet: Sheet, seed: int) -> None:
    from cartoon.acgan import EYE_COLOURS, HAIR_COLOURS, RANDOM, Recipe, avatars

    # A row per colour rather than a face per (hair, eyes) pair: one generator call per row.
    recipes = {f"{hair} hair": Recipe(hair, RANDOM, seed, AVATARS_PER_COLOUR, 0.8) for hair in HAIR_COLOURS}
    recipes |= {f"{eyes} eyes": Recipe(RANDOM, eyes, seed, AVATARS_PER_COLOUR, 0.8) for eyes in EYE_COLOURS}
    try:
        for label, recipe in recipes.items():
            sheet.avatars[label] = avatars(recipe)[0]
    except FileNotFoundError as error:
        sheet.avatars.clear()
        sheet.missing["avatars"] = f"no ACGAN weights yet ({error})"


# --- HTML ----------------------------------------------------------------------------------------


def data_uri(image: Image.Image, longest: int = THUMB, nearest: bool = False) -> str:
    image = image.copy()
    image.thumbnail((longest, longest), Image.Resampling.NEAREST if nearest else Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(image: Image.Image | None, reason: str, longest: int = THUMB) -> str:
    if image is None:
        return f'<span class="missing">{html.escape(reason)}</span>'
    return f'<img src="{data_uri(image, longest)}" alt="">'


def to_html(sheet: Sheet) -> str:
    why = sheet.missing
    rows = []
    for row in sheet.rows:
        matches = "".join(
            f'<figure><img src="{data_uri(thumb, MATCH_THUMB)}" alt=""><figcaption>{html.escape(caption)}</figcaption></figure>'
            for thumb, caption in row.matches
        ) or f'<span class="missing">{html.escape(why.get("look-alikes", "none found"))}</span>'
        notes = "".join(f"<li>{html.escape(note)}</li>" for note in row.notes)
        rows.append(
            f"<tr><th>{html.escape(row.name)}<ul>{notes}</ul></th>"
            f"<td>{_img(row.photo, '')}</td>"
            + "".join(f"<td>{_img(row.cartoons.get(style), why.get('cartoon', 'failed'))}</td>" for style in sheet.styles)
            + f"<td>{_img(row.anime, why.get('anime', 'failed'))}</td><td class=\"matches\">{matches}</td></tr>"
        )
    if sheet.avatars:
        body = "".join(
            f"<tr><th>{html.escape(label)}</th><td>"
            + "".join(f'<img class="pixel" src="{data_uri(face, 64, nearest=True)}" alt="">' for face in faces)
            + "</td></tr>"
            for label, faces in sheet.avatars.items()
        )
        avatars = f"<table class=\"avatars\">{body}</table>"
    else:
        avatars = f'<p class="missing">{html.escape(why.get("avatars", ""))}</p>'
    missing = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in why.items())
    cartoon_headings = "".join(f"<th>cartoon ({html.escape(style)})</th>" for style in sheet.styles)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cartoon people: contact sheet</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ddd; padding: 4px; vertical-align: top; text-align: left; font-size: 13px; }}
th ul {{ font-weight: normal; padding-left: 1.2em; max-width: 14em; }}
figure {{ display: inline-block; margin: 2px; text-align: center; }}
figcaption {{ font-size: 11px; }}
.matches {{ max-width: 40em; }}
.missing {{ color: #a33; font-style: italic; }}
img.pixel {{ width: {64 * AVATAR_SCALE}px; image-rendering: pixelated; }}
</style></head><body>
<h1>Contact sheet</h1>
{f"<ul>{missing}</ul>" if missing else ""}
<table><tr><th>input</th><th>photo</th>{cartoon_headings}<th>anime (TwinGAN, face crop)</th><th>look-alikes (group, cosine distance)</th></tr>
{"".join(rows)}</table>
<h2>Avatars (ACGAN): a row per hair colour (random eyes), then per eye colour (random hair)</h2>
{avatars}
</body></html>
"""


# --- PNG -----------------------------------------------------------------------------------------


def _fit(image: Image.Image | None, size: int) -> Image.Image:
    if image is None:
        return Image.new("RGB", (size, size), (240, 240, 240))
    return ImageOps.contain(image, (size, size), Image.Resampling.LANCZOS)


def to_png(sheet: Sheet) -> Image.Image:
    """The same sheet as one picture: a row per photo, then the avatar grid."""
    per_row = max([len(row.matches) for row in sheet.rows] + [1])
    match_columns = min(per_row, 8)
    match_rows = -(-per_row // match_columns)
    row_height = max(THUMB, match_rows * (MATCH_THUMB + GAP)) + LABEL_HEIGHT + GAP
    width = (2 + len(sheet.styles)) * (THUMB + GAP) + match_columns * (MATCH_THUMB + GAP) + GAP
    face, label = 64 * AVATAR_SCALE, 100
    if sheet.avatars:
        width = max(width, label + AVATARS_PER_COLOUR * (face + 2) + GAP)
    avatar_height = len(sheet.avatars) * (face + 2)
    notes = [f"{family}: {reason}" for family, reason in sheet.missing.items()]
    top = GAP + (len(notes) + 1) * LABEL_HEIGHT
    canvas = Image.new("RGB", (width, top + len(sheet.rows) * row_height + avatar_height + GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for line, note in enumerate(notes):
        draw.text((GAP, GAP + line * LABEL_HEIGHT), note, fill=(170, 50, 50))
    headings = ["photo", *(f"cartoon ({style})" for style in sheet.styles), "anime (TwinGAN)", "look-alikes"]
    for column, heading in enumerate(headings):
        draw.text((GAP + column * (THUMB + GAP), top - LABEL_HEIGHT), heading, fill="black")
    y = top
    for row in sheet.rows:
        draw.text((GAP, y), row.name, fill=(90, 90, 90))
        x = GAP
        for picture in (row.photo, *(row.cartoons.get(style) for style in sheet.styles), row.anime):
            canvas.paste(_fit(picture, THUMB), (x, y + LABEL_HEIGHT))
            x += THUMB + GAP
        for index, (thumb, _) in enumerate(row.matches):
            column, line = index % match_columns, index // match_columns
            canvas.paste(thumb, (x + column * (MATCH_THUMB + GAP), y + LABEL_HEIGHT + line * (MATCH_THUMB + GAP)))
        y += row_height
    for line, (name, faces) in enumerate(sheet.avatars.items()):
        draw.text((GAP, y + line * (face + 2) + face // 2), name, fill="black")
        for column, avatar in enumerate(faces):
            canvas.paste(avatar.resize((face, face), Image.Resampling.NEAREST), (label + column * (face + 2), y + line * (face + 2)))
    return canvas
