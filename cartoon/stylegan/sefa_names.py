"""Names for the SeFa sliders, given by a person who looked at what each direction changes.

SeFa's directions come out of the weights unnamed (`sefa0` the strongest). To name them, render
strips — a few faces moved from −3 to +3 along each — look, and ship the names beside the weights:

    python -m cartoon.stylegan.sefa_names --weights weights/stylegan --strips runs/sefa-strips
    python -m cartoon.stylegan.sefa_names --weights weights/stylegan --ship weights/stylegan \\
        --name sefa0="hair length" --name sefa3="mouth open"

Names belong to the weights they were given on: the file is `sefa-names-<fingerprint>.json` in
the weights' `directions/` folder, and any other weights fall back to `sefaK`. Recipes always
say `sefaK`: a recipe draws the same pixels forever, while a name can be reworded at any time;
the Lab's sliders and the CLI show and accept the names on top of that.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from PIL import Image

from cartoon.media import grid, upscale
from cartoon.stylegan.directions import SEFA_COUNT, SEFA_DIRECTIONS, directions, fingerprint, shipped_directions
from cartoon.stylegan.lab import draw, mapped
from cartoon.stylegan.model import Generator

STRIP_STEPS = (-3.0, -1.5, 0.0, 1.5, 3.0)  # in standard deviations of w, the SeFa sliders' unit
STRIP_SEEDS = (1, 2, 3, 4)
MAX_NAME = 40


def names_file(generator: Generator, folder: Path | None = None) -> Path:
    return (folder or shipped_directions()) / f"sefa-names-{fingerprint(generator)}.json"


def sefa_names(generator: Generator, folder: Path | None = None) -> dict[str, str]:
    """{"sefa3": "mouth open", …} shipped for exactly these weights; {} when none were."""
    file = names_file(generator, folder)
    if not file.is_file():
        return {}
    names = json.loads(file.read_text())
    return {key: str(value) for key, value in names.items() if key in SEFA_DIRECTIONS}


def label(direction: str, names: dict[str, str]) -> str:
    """`sefa3 · mouth open` when named, else `sefa3`."""
    return f"{direction} · {names[direction]}" if direction in names else direction


def resolve(name: str, names: dict[str, str]) -> str:
    """A direction given by its SeFa name ("mouth open") → its recipe name (sefa3); others unchanged."""
    by_name = {value.lower(): key for key, value in names.items()}
    return by_name.get(name.strip().lower(), name)


def write_names(generator: Generator, names: dict[str, str], folder: Path) -> Path:
    """Ship `names` for these weights into `folder` (a weights folder's `directions/`)."""
    for key, value in names.items():
        if key not in SEFA_DIRECTIONS:
            raise ValueError(f"only sefa0 … sefa{SEFA_COUNT - 1} are named here, not {key!r}")
        if not value.strip() or len(value) > MAX_NAME or "," in value or ":" in value:
            raise ValueError(f"{key}'s name must be 1 to {MAX_NAME} characters without , or :, not {value!r}")
    clashes = {v.lower() for v in names.values() if [w.lower() for w in names.values()].count(v.lower()) > 1}
    if clashes:
        raise ValueError(f"two directions share the name {sorted(clashes)[0]!r}")
    file = names_file(generator, folder)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(dict(sorted(names.items(), key=lambda kv: int(kv[0][4:]))), indent=1, ensure_ascii=False))
    return file


@torch.no_grad()
def strips(generator: Generator, seeds=STRIP_SEEDS, steps=STRIP_STEPS, psi: float = 0.7) -> dict[str, Image.Image]:
    """Per SeFa direction, a grid: one row per seed, its face moved by each of `steps`."""
    vectors = directions(generator, "sefa")
    ws = [generator.styles(mapped(generator, seed, psi)) for seed in seeds]
    return {name: grid([draw(generator, w + step * vector.to(w.device)) for w in ws for step in steps], columns=len(steps))
            for name, vector in vectors.items()}


def name_argument(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f'--name is sefaK="what it changes", not {text!r}')
    return key.strip(), value.strip().strip('"')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a generator folder (config.json + model.safetensors)")
    parser.add_argument("--strips", metavar="FOLDER", help="write sefaK.png strips here, rows = seeds, columns = −3 … +3")
    parser.add_argument("--seeds", default=",".join(map(str, STRIP_SEEDS)))
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--name", action="append", default=[], metavar='sefaK="NAME"', help="a slider's name; repeatable")
    parser.add_argument("--ship", metavar="WEIGHTS_FOLDER", help="write the --name names to WEIGHTS_FOLDER/directions/")
    args = parser.parse_args(argv)
    generator = Generator.from_pretrained(args.weights).eval()
    if args.strips:
        folder = Path(args.strips)
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in strips(generator, [int(s) for s in args.seeds.split(",")]).items():
            upscale(image, args.scale).save(folder / f"{name}.png")
        print(f"-> {folder}/sefa0 … sefa{SEFA_COUNT - 1}.png (rows: seeds {args.seeds}; columns: {', '.join(f'{s:+g}' for s in STRIP_STEPS)})")
    if args.name:
        if not args.ship:
            parser.error("--name needs --ship WEIGHTS_FOLDER: names are shipped with the weights they were given on")
        try:
            file = write_names(generator, dict(map(name_argument, args.name)), Path(args.ship) / "directions")
        except ValueError as error:
            parser.error(str(error))
        print(f"-> {file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
