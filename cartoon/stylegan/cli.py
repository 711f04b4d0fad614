"""`python -m cartoon lab …`: Latent Lab faces, directions, edits and animations from the command line."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from cartoon.latent import MAX_FRAMES
from cartoon.media import save_gif, save_video, upscale
from cartoon.recipes import finite_number
from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.stylegan.directions import SEFA_DIRECTIONS, default_amount
from cartoon.stylegan.edits import Edit
from cartoon.stylegan.lab import MAX_FACES, SHEET_STEPS, Recipe, animate, direction_sheet, interpolate, load_generator, render_grid
from cartoon.stylegan.sefa_names import label, resolve, sefa_names

OUTPUTS = (".png", ".gif", ".mp4")


def register(subparsers) -> None:
    lab = subparsers.add_parser(
        "lab",
        help="Latent Lab: style-based anime faces moved along directions, mixed, edited and animated",
        description="Draw faces of the style-based generator; prints the recipe that reproduces them. "
        "A .png is the face (or -n faces); a .gif or .mp4 animates --edit (0 → amount → 0) or morphs to --to.",
    )
    lab.add_argument("--recipe", help="a recipe such as 'stylegan:v2;seed=7;psi=0.7;dir=hair-blue:2' (the options below add to it)")
    lab.add_argument("--seed", type=int, help="the face's seed (default 0)")
    lab.add_argument("-n", "--count", type=int, default=1, help=f"faces of seeds S … S+N−1 as one grid, 1 to {MAX_FACES} (PNG only)")
    lab.add_argument("--truncation", type=float, help="ψ, 0 (the mean face) to 1.5; default 1 (no pull)")
    lab.add_argument("--direction", action="append", default=[], metavar="NAME[:AMOUNT]",
                     help="hair=blue, eyes=red, sefa3 or a SeFa slider's shipped name (\"mouth open\":2), with an amount "
                     "(default: 2 for colours, 3 for sefa); repeatable. Recipes always say sefaK")
    lab.add_argument("--mix", type=int, metavar="SEED", help="style mixing: take the styles from --crossover on from this seed's face")
    lab.add_argument("--crossover", type=int, default=4, help="first style taken from --mix (0 … 10 at 64²: low = layout, high = colour)")
    lab.add_argument("--edit", metavar="EDIT.json[:AMOUNT]", help="a feature-map edit saved by the Latent Lab, optionally with its amount")
    lab.add_argument("--sheet", metavar="NAMES", help="a PNG with a row per direction (sefa, hair, eyes or names such as "
                     "sefa0,hair-blue), the face moved by −1 … +1 × its default amount: what each direction changes")
    lab.add_argument("--to", metavar="RECIPE", help="animate a w interpolation from this face to RECIPE's")
    lab.add_argument("--frames", type=int, default=24, help=f"animation frames, 2 to {MAX_FRAMES}")
    lab.add_argument("--fps", type=int, default=12)
    lab.add_argument("--scale", type=int, default=4, help="nearest-neighbour enlargement of the output")
    lab.add_argument("-o", "--output", default="lab.png", help=" or ".join(OUTPUTS))
    lab.set_defaults(func=run_lab)


def direction_argument(text: str, names: dict[str, str] | None = None) -> tuple[str, float]:
    """`hair=blue:2` → ("hair-blue", 2.0); `sefa3` or its shipped name → ("sefa3", its default amount)."""
    name, sep, amount = text.strip().partition(":")  # a shipped name never holds a colon
    name = resolve(name.strip().strip('"'), names or {}).lower().replace("=", "-")
    return name, finite_number(f"--direction {name}", amount) if sep else default_amount(name)


def sheet_names(text: str) -> list[str]:
    """`sefa` → sefa0 … sefa9, `hair` / `eyes` → every colour, else the comma-separated names."""
    groups = {"sefa": list(SEFA_DIRECTIONS), "hair": [f"hair-{c}" for c in HAIR_COLOURS],
              "eyes": [f"eyes-{c}" for c in EYE_COLOURS]}
    return [name for part in text.lower().split(",") for name in groups.get(part.strip(), [part.strip()])]


def edit_argument(text: str) -> Edit:
    path, sep, amount = text.rpartition(":")
    if not sep or not path:
        return Edit.load(text)
    return Edit.load(path).with_amount(finite_number("--edit amount", amount))


def build_recipe(args: argparse.Namespace, names: dict[str, str] | None = None) -> Recipe:
    recipe = Recipe.parse(args.recipe) if args.recipe else Recipe()
    changes: dict = {}
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.truncation is not None:
        changes["psi"] = args.truncation
    if args.direction:
        changes["directions"] = dict(recipe.directions) | dict(direction_argument(d, names) for d in args.direction)
    if args.mix is not None:
        changes |= {"mix": args.mix, "cross": args.crossover}
    if args.edit:
        changes["edit"] = edit_argument(args.edit)
    return replace(recipe, **changes)


def run_lab(args: argparse.Namespace) -> int:
    suffix = Path(args.output).suffix.lower()
    try:
        if suffix not in OUTPUTS:
            raise ValueError(f"output must end in {', '.join(OUTPUTS)}, not {suffix or 'nothing'!r}")
        if not 1 <= args.fps <= 60:
            raise ValueError(f"fps must be from 1 to 60, not {args.fps}")
        generator = load_generator(Recipe.parse(args.recipe).version if args.recipe else Recipe().version)
        names = sefa_names(generator)
        recipe = build_recipe(args, names)
        if recipe.edit is not None:
            recipe.edit.check(generator)
        if args.sheet:
            if suffix != ".png" or args.count != 1:
                raise ValueError("a direction sheet is one face's PNG: -o NAME.png, without -n")
            rows = sheet_names(args.sheet)
            upscale(direction_sheet(recipe, rows, generator=generator), args.scale).save(args.output)
            print(f"{recipe}\nrows: {', '.join(label(row, names) for row in rows)}; columns: {', '.join(f'{s:+g}' for s in SHEET_STEPS)} × the default amount")
        elif suffix == ".png":
            render_grid(recipe, args.count, generator, args.scale).save(args.output)
            print(f"{recipe}" + (f" (seeds {recipe.seed} … {recipe.seed + args.count - 1})" if args.count > 1 else ""))
        else:
            if args.count != 1:
                raise ValueError("an animation shows one face: leave out -n")
            if args.to:
                frames = interpolate(recipe, args.to, args.frames, generator=generator)
            elif recipe.edit is not None:
                frames = animate(recipe, frames=args.frames, generator=generator)
            else:
                raise ValueError("a .gif or .mp4 animates an --edit, or morphs to --to RECIPE: give one")
            if suffix == ".gif":
                save_gif(frames, args.output, args.fps, args.scale)
            else:
                save_video(frames, args.output, args.fps, max(args.scale, 2))
            print(f"{recipe}\n{len(frames)} frames")
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"-> {args.output}")
    return 0
