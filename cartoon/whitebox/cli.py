"""`python -m cartoon cartoonize INPUT... -o OUTDIR`: cartoonize files and folders."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from cartoon.images import DEFAULT_MAX_SIDE, ImageError, list_images, open_image
from cartoon.stylize import MODES


def register(subparsers):
    parser = subparsers.add_parser("cartoonize", help="photo → cartoon (white-box cartoonizer)")
    parser.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="folder for the PNG results")
    parser.add_argument("--mode", choices=list(MODES), default="faces", help="faces pasted back, whole image, or face crops")
    parser.add_argument("--strength", type=float, default=1.0, help="0 = photo, 1 = full cartoon")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="longest side of the output")
    parser.set_defaults(func=run)


def run(args) -> int:
    from cartoon.whitebox import cartoonize_photo

    if not 0.0 <= args.strength <= 1.0:
        raise SystemExit("--strength must be between 0 and 1")
    try:
        files = list_images(args.inputs)
    except ImageError as error:
        raise SystemExit(str(error))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in tqdm(files, desc="cartoonize", unit="image"):
        try:
            loaded = open_image(path, max_side=args.max_side)
            result = cartoonize_photo(loaded.image, mode=args.mode, strength=args.strength)
        except ImageError as error:
            tqdm.write(f"skipped {path}: {error}")
            failures += 1
            continue
        result.image.save(output / f"{path.stem}.png")
        for note in loaded.notes + result.notes:
            tqdm.write(f"{path.name}: {note}")
    print(f"{len(files) - failures} of {len(files)} images cartoonized into {output}")
    return 1 if failures == len(files) else 0
