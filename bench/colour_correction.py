"""Time the cel style's colour correction (`cartoon.whitebox.colour.keep_photo_colour`) against the
generator it follows, at the sizes a user's photo is cartoonized at.

    python bench/colour_correction.py [--repeats 5] [--threads 0] [--sizes 512 1024]

The reference, measured in the same run, is one forward pass of the cel generator at each size (bf16
and channels-last, as `cartoonize` runs it). The correction is timed colour only, and with the
photo's luminance kept at the radii evaluated (`cartoon.whitebox.evaluate --keep-luma`): the luminance box's cost
grows with its radius, and it is worked out at the correction's small working side.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.runtime import inference_autocast  # noqa: E402
from cartoon.whitebox.colour import keep_photo_colour  # noqa: E402
from cartoon.whitebox.model import Generator  # noqa: E402
from timing import generator_bench_args, median_seconds, print_report, shipped_or_random  # noqa: E402

LUMA_RADII = (8, 32)


def main() -> int:
    args = generator_bench_args(__doc__, lambda parser: parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024]))
    generator, source = shipped_or_random("whitebox-cel", Generator)
    generator = generator.to(memory_format=torch.channels_last)
    for size in args.sizes:
        photo = torch.rand(1, 3, size, size) * 2 - 1
        with torch.inference_mode(), inference_autocast(photo.device):
            cartoon = generator(photo.contiguous(memory_format=torch.channels_last)).float()

        def reference():
            with torch.inference_mode(), inference_autocast(photo.device):
                generator(photo.contiguous(memory_format=torch.channels_last))

        rows = [(f"cel generator, {size}²", median_seconds(reference, args.repeats), None)]
        with torch.inference_mode():
            rows.append((f"colour kept, {size}²", median_seconds(lambda: keep_photo_colour(photo, cartoon), args.repeats), None))
            for radius in LUMA_RADII:
                seconds = median_seconds(lambda: keep_photo_colour(photo, cartoon, radius), args.repeats)
                rows.append((f"colour and luminance (radius {radius}), {size}²", seconds, None))
        print_report(rows, source, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
