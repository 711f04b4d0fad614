"""`python -m cartoon cartoonize INPUT... -o OUTDIR`: cartoonize files and folders."""

from __future__ import annotations

from cartoon.images import DEFAULT_MAX_SIDE
from cartoon.stylize import MODES, stylize_files
from cartoon.whitebox import STYLES


def register(subparsers):
    parser = subparsers.add_parser("cartoonize", help="photo → cartoon (white-box cartoonizer)")
    parser.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="folder for the PNG results")
    parser.add_argument("--mode", choices=list(MODES), default="faces", help="faces pasted back, whole image, or face crops")
    parser.add_argument("--style", choices=list(STYLES),
                        help="; ".join(f"{name}: {spec.description}" for name, spec in STYLES.items())
                        + " (default: the first of these whose weights are installed)")
    parser.add_argument("--strength", type=float, default=1.0, help="0 = photo, 1 = full cartoon")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="longest side of the output")
    parser.set_defaults(func=run)


def run(args) -> int:
    from cartoon.whitebox import cartoonize_photo, default_model, default_style

    if not 0.0 <= args.strength <= 1.0:
        raise SystemExit("--strength must be between 0 and 1")
    style = args.style or default_style()
    default_model(style)  # a style without weights stops here, before any file is read
    return stylize_files(
        args.inputs,
        args.output,
        lambda photo: cartoonize_photo(photo, mode=args.mode, strength=args.strength, style=style),
        args.max_side,
        "cartoonize",
    )
