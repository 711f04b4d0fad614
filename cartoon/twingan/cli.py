"""`python -m cartoon anime INPUT... -o OUTDIR [--reverse] [--hair green --eyes keep]` and `python -m cartoon lookalike PHOTO --gallery DIR -k 8`."""

from __future__ import annotations

from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.images import DEFAULT_MAX_SIDE, ImageError, open_image
from cartoon.stylize import MODES, stylize_files


def register(subparsers):
    anime = subparsers.add_parser("anime", help="human portrait → anime (TwinGAN); --reverse for anime → human")
    anime.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    anime.add_argument("-o", "--output", required=True, help="folder for the PNG results")
    anime.add_argument("--reverse", action="store_true", help="anime → human instead")
    anime.add_argument("--mode", choices=list(MODES), default="crop", help="face crops (default), faces pasted back, or whole image")
    anime.add_argument("--strength", type=float, default=1.0, help="0 rebuilds the face in its own domain, 1 (default) translates fully")
    anime.add_argument("--hair", choices=["keep", *HAIR_COLOURS], default="keep", help="hair colour asked of colour-conditioned "
                       "weights (default: keep the photo's)")
    anime.add_argument("--eyes", choices=["keep", *EYE_COLOURS], default="keep", help="eye colour, likewise")
    anime.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="longest side the input is scaled to")
    anime.set_defaults(func=run_anime)

    lookalike = subparsers.add_parser("lookalike", help="nearest gallery faces in TwinGAN's shared embedding")
    lookalike.add_argument("photo", help="the query image")
    lookalike.add_argument("--gallery", help="gallery folder (sub-folders anime/ and human/ are searched apart); default: the project's own")
    lookalike.add_argument("-k", type=int, default=8, help="look-alikes per group")
    lookalike.add_argument("--whole", action="store_true", help="embed the whole image instead of its largest face")
    lookalike.set_defaults(func=run_lookalike)


def run_anime(args) -> int:
    from cartoon.twingan import anime_photo, get_model
    from cartoon.twingan.colour import colours_for

    if not 0.0 <= args.strength <= 1.0:
        raise SystemExit("--strength must be between 0 and 1")
    model = get_model()
    try:
        colours_for(model, args.hair, args.eyes, args.reverse)
    except ValueError as error:
        raise SystemExit(f"--hair {args.hair} --eyes {args.eyes}: {error}") from None
    return stylize_files(
        args.inputs,
        args.output,
        lambda image: anime_photo(image, reverse=args.reverse, mode=args.mode, model=model, strength=args.strength,
                                  hair=args.hair, eyes=args.eyes),
        args.max_side,
        "humanize" if args.reverse else "translate",
    )


def run_lookalike(args) -> int:
    from cartoon.twingan import lookalikes

    try:
        loaded = open_image(args.photo)
        matches = lookalikes(loaded.image, k=args.k, gallery=args.gallery, align=not args.whole)
    except (ImageError, ValueError) as error:
        raise SystemExit(str(error))
    for group, found in matches.items():
        print(f"{group}:")
        for match in found:
            print(f"  {match.distance:.4f}  {match.path}")
    return 0
