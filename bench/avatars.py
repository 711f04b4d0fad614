"""Time the avatar sampler on this CPU: 64 avatars, and a 60-frame morph saved as GIF (and MP4).

    python bench/avatars.py [--repeats 5] [--threads 0] [--version N] [--weights FOLDER]

Targets from the issue: 64 avatars under 0.25 s, a 60-frame GIF under 2 s. Times depend on
the machine and on whatever else runs on it, so each is also given as a ratio to a reference
measured in the same run: one plain forward pass of the generator on 64 noise vectors.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.acgan import LATEST, MODEL_VERSIONS, Recipe, avatars, morph, noise_size, styled  # noqa: E402
from cartoon.hub import REGISTRY  # noqa: E402
from cartoon.media import save_gif, save_video, video_encoder  # noqa: E402
from timing import generator_bench_args, median_seconds, print_report, shipped_or_random  # noqa: E402


def main() -> int:
    def add_arguments(parser):
        parser.add_argument("--version", type=int, default=LATEST, choices=sorted(MODEL_VERSIONS),
                            help="model version to time (default: the one the app draws)")
        parser.add_argument("--weights", type=Path, help="an exported folder of that version, e.g. a run's export before it ships")

    args = generator_bench_args(__doc__, add_arguments)
    name = MODEL_VERSIONS[args.version]
    model_class = REGISTRY[name].resolve_class()
    if args.weights:
        generator, source = model_class.from_pretrained(str(args.weights)).eval(), str(args.weights)
    else:
        generator, source = shipped_or_random(name, model_class)
    noise = torch.randn(64, noise_size(generator))
    hair, eyes = torch.randint(0, 12, (64,)), torch.randint(0, 10, (64,))

    def reference():
        with torch.no_grad():
            if styled(generator):
                generator(noise, noise="fixed", hair=hair, eyes=eyes)
            else:
                generator(noise, hair, eyes)

    recipe = Recipe("blue", "red", seed=7, n=64, trunc=0.8, version=args.version)
    start, end = Recipe("blue", "red", 7, version=args.version), Recipe("blonde", "green", 42, version=args.version)

    def gif():
        save_gif(morph(start, end, 60, generator=generator), Path(scratch) / "m.gif", 20, 2)

    def mp4():
        save_video(morph(start, end, 60, generator=generator), Path(scratch) / "m.mp4", 20, 4)

    with tempfile.TemporaryDirectory() as scratch:
        rows = [("reference: generator forward, 64 faces", median_seconds(reference, args.repeats), None)]
        rows.append(("64 avatars (recipe → PIL images)", median_seconds(lambda: avatars(recipe, generator), args.repeats), 0.25))
        rows.append(("60-frame morph → GIF (×2)", median_seconds(gif, args.repeats), 2.0))
        if video_encoder():
            rows.append(("60-frame morph → MP4 (×4, H.264)", median_seconds(mp4, args.repeats), None))

    print_report(rows, source, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
