"""Time the Latent Lab on this CPU: one face with its feature-map overlay, and a 24-frame edit animation.

    python bench/lab.py [--repeats 5] [--threads 0]

Targets from issue 42 (part 7): the overlay under 0.3 s, the 24-frame animation under 3 s. Times
depend on the machine and on whatever else runs on it, so each is also given as a ratio to a
reference measured in the same run: one plain forward pass of the generator for one face.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.media import save_gif  # noqa: E402
from cartoon.stylegan.edits import Edit  # noqa: E402
from cartoon.stylegan.lab import Recipe, animate, feature_overlay, interpolate, rank_channels, render  # noqa: E402
from cartoon.stylegan.model import Generator  # noqa: E402
from timing import generator_bench_args, median_seconds, print_report, shipped_or_random  # noqa: E402


def main() -> int:
    args = generator_bench_args(__doc__)
    generator, source = shipped_or_random("stylegan", Generator)
    z = torch.randn(1, generator.latent_dim)

    def reference():
        with torch.no_grad():
            generator(z, noise="fixed")

    block = len(generator.blocks) - 2  # 16×16 cells at 64²: the size a mouth edit is painted at
    side = generator.block_sizes[block - 1]
    edit = Edit.painted(block, [0, 1], [(side * 5 // 8, side // 2 - 1), (side * 5 // 8, side // 2)], side, amount=5.0)
    recipe = Recipe(7, 0.7, {"sefa1": 1.5})

    with tempfile.TemporaryDirectory() as scratch:
        os.environ["CARTOON_CACHE"] = scratch  # the SeFa directions are computed in the warm-up, then read
        rows = [("reference: generator forward, 1 face", median_seconds(reference, args.repeats), None)]
        rows.append(("1 face (recipe with a direction → PIL)", median_seconds(lambda: render(recipe, generator), args.repeats), None))
        rows.append(("1 face with the feature-map overlay", median_seconds(lambda: feature_overlay(recipe, block, 0, generator), args.repeats), 0.3))
        rows.append(("channels ranked at a cell", median_seconds(lambda: rank_channels(recipe, block, (side // 2, side // 2), generator), args.repeats), None))
        rows.append(("24-frame edit animation (frames)", median_seconds(lambda: animate(recipe, edit, 24, generator=generator), args.repeats), 3.0))
        rows.append(("24-frame edit animation → GIF (×4)", median_seconds(
            lambda: save_gif(animate(recipe, edit, 24, generator=generator), Path(scratch) / "a.gif", 12, 4), args.repeats), 3.0))
        rows.append(("24-frame w interpolation (frames)", median_seconds(
            lambda: interpolate(recipe, Recipe(42, 0.7), 24, generator=generator), args.repeats), None))

    print_report(rows, source, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
