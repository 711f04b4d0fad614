"""`python -m cartoon avatars …` and `python -m cartoon interpolate …`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cartoon.acgan import EYE_COLOURS, HAIR_COLOURS, LATEST, MAX_FACES, MODEL_VERSIONS, RANDOM, Recipe, avatars, morph
from cartoon.media import grid, save_gif, save_video, upscale


def register(subparsers) -> None:
    draw = subparsers.add_parser(
        "avatars",
        help="draw 64×64 anime faces with chosen hair and eye colours",
        description="Draw anime avatars; prints the recipe that reproduces them.",
    )
    draw.add_argument("--recipe", help="a recipe such as 'acgan:v2;hair=blue;eyes=red;seed=7;n=16;trunc=0.8' (overrides the options below)")
    draw.add_argument("--hair", default=RANDOM, help=f"{', '.join(HAIR_COLOURS)} or random")
    draw.add_argument("--eyes", default=RANDOM, help=f"{', '.join(EYE_COLOURS)} or random")
    draw.add_argument("-n", "--count", type=int, default=16, help=f"faces, 1 to {MAX_FACES}")
    draw.add_argument("--seed", type=int, default=0)
    draw.add_argument("--trunc", type=float, default=1.0, help="truncation, 0 to 2: lower is more typical, higher more varied")
    draw.add_argument("--version", type=int, choices=sorted(MODEL_VERSIONS), default=LATEST,
                      help="generator version: 1 and 2 the SRResNet ACGANs, 3 the style-based one")
    draw.add_argument("--scale", type=int, default=1, help="nearest-neighbour enlargement of the saved image")
    draw.add_argument("--faces", help="also save every face alone in this folder, named by its recipe's seed")
    draw.add_argument("-o", "--output", default="avatars.png", help="the grid image")
    draw.set_defaults(func=run_avatars)

    move = subparsers.add_parser(
        "interpolate",
        help="morph one avatar into another (GIF or MP4)",
        description="Morph the first face of recipe A into the first face of recipe B.",
    )
    move.add_argument("start", help="recipe A, e.g. 'acgan:v2;hair=blue;eyes=red;seed=7'")
    move.add_argument("end", help="recipe B")
    move.add_argument("--frames", type=int, default=60, help="2 to 120, both ends included")
    move.add_argument("--mode", choices=("slerp", "lerp"), default="slerp", help="how the noise moves; colours always move linearly")
    move.add_argument("--fps", type=int, default=20)
    move.add_argument("--scale", type=int, default=2, help="nearest-neighbour enlargement of every frame")
    move.add_argument("-o", "--output", default="morph.gif", help=".gif, or .mp4 (bundled ffmpeg of imageio-ffmpeg)")
    move.set_defaults(func=run_interpolate)


def run_avatars(args: argparse.Namespace) -> int:
    try:
        recipe = Recipe.parse(args.recipe) if args.recipe else Recipe(args.hair.lower(), args.eyes.lower(), args.seed, args.count, args.trunc, args.version)
        faces, recipes = avatars(recipe)
        upscale(grid(faces), args.scale).save(args.output)
        if args.faces:
            folder = Path(args.faces)
            folder.mkdir(parents=True, exist_ok=True)
            for face, own in zip(faces, recipes):
                upscale(face, args.scale).save(folder / f"{own.hair}-{own.eyes}-seed{own.seed}.png")
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{recipe}\n-> {args.output}")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    suffix = Path(args.output).suffix.lower()
    try:
        if suffix not in (".gif", ".mp4"):
            raise ValueError(f"output must end in .gif or .mp4, not {suffix or 'nothing'!r}")
        if not 1 <= args.fps <= 60:
            raise ValueError(f"fps must be from 1 to 60, not {args.fps}")
        frames = morph(args.start, args.end, args.frames, args.mode)
        if suffix == ".gif":
            save_gif(frames, args.output, args.fps, args.scale)
        else:
            save_video(frames, args.output, args.fps, max(args.scale, 2))
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(frames)} frames -> {args.output}")
    return 0
