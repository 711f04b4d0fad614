"""Cost of the white-box flat pull's ink target (`--flat-target superpixel-ink`) per training step.

    python bench/whitebox_flat_target.py --threads 1 --repeats 5

Times, on one training batch (8 × 128², random smooth images), the superpixel structure map every
step already builds (the reference), `line_ink` on top of it, and the generator's forward and
backward pass at the run's width, which is only part of a step (critics, VGG and landmark terms
come on top). Each as a ratio to the structure map measured in the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from timing import generator_bench_args, median_seconds, print_report  # noqa: E402

from cartoon.whitebox import representations as rep  # noqa: E402
from cartoon.whitebox.model import Generator  # noqa: E402


def main():
    args = generator_bench_args(__doc__)
    torch.manual_seed(0)
    # smooth random colour fields with thin dark strokes: something to segment and something to ink
    batch = F.interpolate(torch.rand(8, 3, 16, 16) * 2 - 1, size=128, mode="bicubic").clamp(-1, 1)
    batch[..., ::24, :] = -0.9
    structure = rep.structure(batch, "felzenszwalb", 100)
    generator = Generator(channels=16)

    def generator_pass():
        generator.zero_grad(set_to_none=True)
        generator(batch).mean().backward()

    rows = [
        ("structure map (felzenszwalb, 100 segments)", median_seconds(lambda: rep.structure(batch, "felzenszwalb", 100), args.repeats), None),
        ("line_ink on the structure map", median_seconds(lambda: rep.line_ink(structure, batch), args.repeats), None),
        ("generator forward + backward (16 ch)", median_seconds(generator_pass, args.repeats), None),
    ]
    print_report(rows, "random generator, batch 8 × 128²", args.repeats)


if __name__ == "__main__":
    main()
