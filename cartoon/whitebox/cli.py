"""`python -m cartoon cartoonize INPUT... -o OUTDIR`: cartoonize files and folders."""

from __future__ import annotations

from cartoon.images import DEFAULT_MAX_SIDE
from cartoon.stylize import MODES, stylize_files


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
    return stylize_files(
        args.inputs,
        args.output,
        lambda photo: cartoonize_photo(photo, mode=args.mode, strength=args.strength),
        args.max_side,
        "cartoonize",
    )
