"""Find the Latent Lab's talking-mouth edit for a generator's weights, without anyone clicking.

GANInterface's talking animation opens and closes a mouth by adding a value to a few channels of
one block's input at the mouth's cells. Which channels do it differs for every training run, so on
shipping day this finds them again for the new weights:

1. The mouth cells. The training faces are aligned crops, so the mouth sits at one place: about
   0.64 of the way down, centred (cells (10, 7) and (10, 8) of block 3's 16×16 input at 64²).
2. Every channel is pushed by ±`PROBE` at those cells on a few faces, and ranked by how much it
   darkens the mouth region: an open anime mouth is a dark red-brown oval on light skin. Measured
   effect rather than activation, because channels that light up at the mouth cell (skin, chin
   line) need not open it. A channel counts only if, on every face, it darkens the region and
   leaves it reddish (red above the mean of green and blue): without that test the strongest
   channel on the step-7,000 weights painted a teal blob on a teal-haired face.
3. The top channels, with their signs as weights, make the edit. Its darkening rises with the
   amount, peaks, then falls; but the mouth turns into a blot well before the peak: on the
   shipped weights it opens at amount 1, and at 2 (darkening within 5% of the peak) it is an
   eye-like oval in the eyes' or hair's colour that spills over the skin around it. What marks the blot is that
   spill: up to the opening, pixels visibly change (by `VISIBLE`) almost only inside the edited
   cells; past it the change spreads outside them. A face is blotted when the pixels changed
   outside the cells exceed `SPILL` of those changed inside, and the edit's amount is the
   largest of the sweep, up to the darkening peak, that blots at most `BLOTTED` of the faces.
4. Transfer: on other seeds, the share of faces whose mouth darkens by at least half the mean,
   stays reddish and is not blotted. The darkening and redness are generous (the step-7,000
   weights passed 32 of 32 by them while dark teal-haired faces got a hair-coloured smudge), the
   spill less so; still, look at `--sheet` before shipping.

    python -m cartoon.stylegan.mouth --weights weights/stylegan --output runs/mouth.json --sheet runs/mouth.png
    python -m cartoon lab --seed 4 --truncation 0.7 --edit runs/mouth.json --frames 24 -o talk.gif
    python -m cartoon.stylegan.mouth --weights weights/stylegan --ship weights/stylegan   # after looking

`--ship` writes `directions/mouth-<fingerprint>.json` beside the weights, where the Lab tab finds
it for its "talking" example; like directions and slider names it belongs to those weights only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from cartoon.media import grid, upscale
from cartoon.stylegan.directions import fingerprint, shipped_directions
from cartoon.stylegan.edits import Edit, input_side, parse_cells
from cartoon.stylegan.lab import draw, mapped
from cartoon.stylegan.model import Generator

MOUTH_HEIGHT = 0.64  # the mouth's centre, as a share of the face's height, on the aligned training crops
PROBE = 5.0  # the push each channel is screened with: block inputs are about unit size
VISIBLE = 0.15  # a pixel changed by this much (mean of RGB on −1 … 1, about 19 of 255 levels) is seen to change
SPILL = 0.5  # a face is blotted when more than one pixel changes outside the mouth cells for two inside
BLOTTED = 0.25  # the share of the search faces the edit's amount may blot: "opens the mouth on most faces"
AMOUNTS = tuple(a / 2 for a in range(1, 13))  # 0.5 … 6, swept to find the peak
SEARCH_SEEDS = tuple(range(1, 9))
TRANSFER_SEEDS = tuple(range(100, 132))
PSI = 0.7


def mouth_file(generator: Generator, folder: Path | None = None) -> Path:
    return (folder or shipped_directions()) / f"mouth-{fingerprint(generator)}.json"


def shipped_mouth(generator: Generator) -> Edit | None:
    """The mouth edit shipped for exactly these weights, or None."""
    file = mouth_file(generator)
    return Edit.load(file, generator) if file.is_file() else None


def mouth_cells(side: int) -> list[tuple[int, int]]:
    """The two cells at the mouth on a side × side grid."""
    row = int(MOUTH_HEIGHT * side)
    return [(row, side // 2 - 1), (row, side // 2)]


def mouth_region(cells, side: int, resolution: int, margin: float = 0.5) -> torch.Tensor:
    """(resolution, resolution) bool: the cells' pixels with `margin` of a cell around them."""
    cell = resolution // side
    rows, columns = [r for r, _ in cells], [c for _, c in cells]
    pad = int(margin * cell)
    region = torch.zeros(resolution, resolution, dtype=torch.bool)
    top, left = max(min(rows) * cell - pad, 0), max(min(columns) * cell - pad, 0)
    region[top:(max(rows) + 1) * cell + pad, left:(max(columns) + 1) * cell + pad] = True
    return region


@torch.no_grad()
def styles_of(generator: Generator, seeds, psi: float = PSI) -> torch.Tensor:
    return torch.cat([generator.styles(mapped(generator, seed, psi)) for seed in seeds])


@torch.no_grad()
def mouth_change(generator: Generator, ws: torch.Tensor, base: torch.Tensor, edit: Edit) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per face, what the edit does to the faces of `ws` against `base` (them unedited, drawn once
    by the caller): how much darker the mouth region gets (mean of RGB, on −1 … 1), its redness
    after (red minus the mean of green and blue), and its spill (pixels visibly changed outside the
    edited cells per pixel changed inside them, counted on the pixels as shown: clamped)."""
    side, resolution = len(edit.mask), generator.block_sizes[-1]
    region, cells = mouth_region(edit.cells, side, resolution), mouth_region(edit.cells, side, resolution, margin=0)
    edited = generator.synthesis(ws, noise="fixed", edits=[edit.feature_edit()])
    pixels = edited[:, :, region]
    changed = (edited.clamp(-1, 1) - base.clamp(-1, 1)).abs().mean(1) > VISIBLE
    spill = (changed & ~cells).sum((1, 2)) / (changed & cells).sum((1, 2)).clamp_min(1)
    return (base - edited).mean(1)[:, region].mean(1), (pixels[:, 0] - pixels[:, 1:].mean(1)).mean(1), spill


@torch.no_grad()
def rank_mouth_channels(generator: Generator, ws: torch.Tensor, base: torch.Tensor, block: int, cells,
                        probe: float = PROBE) -> list[tuple[int, float, float]]:
    """(channel, sign, mean darkening) of every channel that darkens the mouth and keeps it reddish
    on every face of `ws` (drawn unedited as `base`), best first."""
    side = input_side(generator, block)
    found = []
    for channel in range(generator.block_channels[block]):
        for sign in (1.0, -1.0):
            dark, red, _ = mouth_change(generator, ws, base, Edit.painted(block, [channel], cells, side, amount=sign * probe))
            if bool((dark > 0).all() and (red > 0).all()):
                found.append((channel, sign, float(dark.mean())))
    best = {}
    for row in sorted(found, key=lambda row: -row[2]):
        best.setdefault(row[0], row)  # a channel may darken both ways: keep its better sign
    return list(best.values())


@torch.no_grad()
def find_mouth_edit(generator: Generator, block: int | None = None, cells=None, channels: int = 3,
                    seeds=SEARCH_SEEDS, amounts=AMOUNTS) -> tuple[Edit, dict]:
    """The mouth edit of these weights, and what was measured on the way."""
    generator.eval()
    block = len(generator.blocks) - 2 if block is None else block  # 16×16 cells at 64²: a mouth is two of them
    side = input_side(generator, block)
    cells = cells or mouth_cells(side)
    ws = styles_of(generator, seeds)
    base = generator.synthesis(ws, noise="fixed")
    ranked = rank_mouth_channels(generator, ws, base, block, cells)
    if not ranked:
        raise ValueError(f"no channel of block {block} darkens the mouth cells {cells} and keeps them reddish on every face: "
                         "try another --block or --cells")
    chosen = ranked[:channels]
    edit = Edit.painted(block, [c for c, _, _ in chosen], cells, side, weights=[s for _, s, _ in chosen])
    changes = [mouth_change(generator, ws, base, edit.with_amount(a)) for a in amounts]
    curve = [float(dark.mean()) for dark, _, _ in changes]
    blotted = [float((spill > SPILL).float().mean()) for _, _, spill in changes]
    peak = curve.index(max(curve))
    clean = [a for a, share in zip(amounts[:peak + 1], blotted) if share <= BLOTTED]
    if not clean:
        raise ValueError(f"the edit of channels {[c for c, _, _ in chosen]} blots the mouth cells {cells} on most faces even at "
                         f"amount {amounts[0]:g}: try another --block, --cells or fewer --channels")
    edit = edit.with_amount(max(clean))
    report = {"block": block, "cells": cells, "ranked": [{"channel": c, "sign": s, "darkening": round(d, 4)} for c, s, d in ranked[:10]],
              "curve": {str(a): round(d, 4) for a, d in zip(amounts, curve)},
              "blotted": {str(a): round(b, 3) for a, b in zip(amounts, blotted)}, "amount": edit.amount}
    return edit, report


@torch.no_grad()
def transfer(generator: Generator, edit: Edit, seeds=TRANSFER_SEEDS) -> dict:
    """How the edit does on faces it was not found on: the share whose mouth darkens by at least
    half the mean, stays reddish and is not blotted (its change does not spill beyond the mouth cells)."""
    ws = styles_of(generator, seeds)
    dark, red, spill = mouth_change(generator, ws, generator.synthesis(ws, noise="fixed"), edit)
    opened = (dark >= dark.mean() / 2) & (red > 0) & (spill <= SPILL)
    return {"faces": len(seeds), "mean_darkening": round(float(dark.mean()), 4), "share_blotted": round(float((spill > SPILL).float().mean()), 4),
            "share_opened": round(float(opened.float().mean()), 4)}


def sheet(generator: Generator, edit: Edit, seeds=(1, 2, 3, 4), steps=(0.0, 0.5, 1.0, 1.5)):
    """Rows of seeds, columns of the edit at `steps` × its amount: what to look at before shipping."""
    faces = [draw(generator, styles_of(generator, [seed]), [edit.feature_edit(step * edit.amount)]) for seed in seeds for step in steps]
    return grid(faces, columns=len(steps))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a generator folder (config.json + model.safetensors)")
    parser.add_argument("--output", help="write the edit JSON here (to look at, or to use with python -m cartoon lab --edit)")
    parser.add_argument("--ship", metavar="WEIGHTS_FOLDER", help="write it to WEIGHTS_FOLDER/directions/mouth-<fingerprint>.json")
    parser.add_argument("--block", type=int, help="the block whose input is edited (default: the one with 16×16 cells at 64²)")
    parser.add_argument("--cells", help="mouth cells as row,col; row,col (default: two centred cells 0.64 down)")
    parser.add_argument("--channels", type=int, default=3, help="how many of the best channels the edit moves")
    parser.add_argument("--sheet", help="also write a PNG: four seeds, the edit at 0, ½, 1 and 1½ × its amount")
    args = parser.parse_args(argv)
    if not (args.output or args.ship):
        parser.error("say where the edit goes: --output EDIT.json, --ship WEIGHTS_FOLDER or both")
    generator = Generator.from_pretrained(args.weights).eval()
    try:
        edit, report = find_mouth_edit(generator, args.block, parse_cells(args.cells) if args.cells else None, args.channels)
    except ValueError as error:
        parser.error(str(error))
    report["transfer"] = transfer(generator, edit)
    written = [Path(args.output)] if args.output else []
    written += [mouth_file(generator, Path(args.ship) / "directions")] if args.ship else []
    for file in written:
        file.parent.mkdir(parents=True, exist_ok=True)
        edit.save(file)
    if args.sheet:
        upscale(sheet(generator, edit), 3).save(args.sheet)
    print(json.dumps(report))
    print(f"channels {list(edit.channels)} × {list(edit.weights)} at cells {edit.cells} of block {edit.block}, amount {edit.amount:g}")
    print("\n".join(f"-> {file}" for file in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
