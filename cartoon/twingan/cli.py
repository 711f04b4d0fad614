"""`python -m cartoon anime INPUT... -o OUTDIR [--reverse]` and `python -m cartoon lookalike PHOTO --gallery DIR -k 8`."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from cartoon.images import DEFAULT_MAX_SIDE, ImageError, list_images, open_image
from cartoon.stylize import MODES


def register(subparsers):
    anime = subparsers.add_parser("anime", help="human portrait → anime (TwinGAN); --reverse for anime → human")
    anime.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    anime.add_argument("-o", "--output", required=True, help="folder for the PNG results")
    anime.add_argument("--reverse", action="store_true", help="anime → human instead")
    anime.add_argument("--mode", choices=list(MODES), default="crop", help="face crops (default), faces pasted back, or whole image")
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

    try:
        files = list_images(args.inputs)
    except ImageError as error:
        raise SystemExit(str(error))
    if not files:
        raise SystemExit("No images found in the given inputs.")
    model = get_model()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in tqdm(files, desc="anime" if not args.reverse else "human", unit="image"):
        try:
            loaded = open_image(path, max_side=args.max_side)
            result = anime_photo(loaded.image, reverse=args.reverse, mode=args.mode, model=model)
        except ImageError as error:
            tqdm.write(f"skipped {path}: {error}")
            failures += 1
            continue
        result.image.save(output / f"{path.stem}.png")
        for note in loaded.notes + result.notes:
            tqdm.write(f"{path.name}: {note}")
    print(f"{len(files) - failures} of {len(files)} images translated into {output}")
    return 1 if failures == len(files) else 0


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
