"""Measure the style-based generator on the held-out anime faces, the way the ACGAN is measured.

    python -m cartoon.stylegan.evaluate --weights runs/stylegan-export --output runs/stylegan-eval/step.json
    python -m cartoon.stylegan.evaluate --weights weights/stylegan --against weights/acgan

FID and KID use the avatar evaluation's Inception and held-out faces (`cartoon.acgan.evaluate`,
the same feature cache), so the two generators' figures sit side by side. The held-out faces
hold the same number of faces of every (hair, eyes) pair, while an unconditional generator
draws colours as often as the training art does; that mismatch can only cost this generator,
so its figure is the conservative one. Diversity is the avatar evaluation's mean pairwise VGG
distance, over groups of 10 random faces, beside groups of 10 random held-out faces.
`--against` also measures an ACGAN folder in the same run, on the same real faces.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from cartoon.acgan import evaluate as avatar_eval
from cartoon.acgan.data import TaggedFaces, read_tags, split_tags
from cartoon.data import ANIME_TAGS
from cartoon.inception import as_uint8, from_uint8
from cartoon.stylegan.model import Generator
from cartoon.training import set_threads


@torch.no_grad()
def sample(generator: Generator, count: int, truncation: float = 1.0, seed: int = 0, batch_size: int = 100) -> torch.Tensor:
    """`count` faces of fixed latents and fixed per-call noise, as uint8 (N, 3, H, W)."""
    torch.manual_seed(seed)  # the per-layer noise draws from the global generator
    z = torch.randn(count, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    generator.eval()
    return torch.cat([as_uint8(generator(chunk, truncation)) for chunk in z.split(batch_size)])


def diversity(images: torch.Tensor, groups: int, distance: avatar_eval.PerceptualDistance, size: int = 10) -> float:
    """Mean pairwise distance inside `groups` disjoint groups of `size` images (uint8)."""
    scores = [distance.mean_pairwise(from_uint8(images[g * size:(g + 1) * size])) for g in range(groups)]
    return sum(scores) / len(scores)


def evaluate(generator: Generator, held: TaggedFaces, samples: int, real: int, cache: Path | None,
             truncation: float = 1.0, groups: int = 12, log=print) -> dict:
    started = time.time()
    fake = sample(generator, samples, truncation)
    report = {"truncation": truncation, **avatar_eval.fid_kid(avatar_eval.real_subset(held, real), fake, cache)}
    log(f"FID {report['fid']:.2f}, KID×100 {100 * report['kid']:.2f} ± {100 * report['kid_std']:.2f} ({time.time() - started:.0f}s)")
    distance = avatar_eval.PerceptualDistance()
    shuffled = held.images[torch.randperm(len(held), generator=torch.Generator().manual_seed(0))]
    report["diversity"] = {"generated": diversity(fake, groups, distance), "real": diversity(shuffled, groups, distance),
                           "groups": groups}
    log(f"diversity: generated {report['diversity']['generated']:.4f}, real {report['diversity']['real']:.4f}")
    report["seconds"] = round(time.time() - started, 1)
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="generator folder (config.json + model.safetensors)")
    parser.add_argument("--data", default=str(ANIME_TAGS))
    parser.add_argument("--samples", type=int, default=2000, help="generated faces for FID/KID")
    parser.add_argument("--real", type=int, default=1190, help="held-out real faces for FID/KID")
    parser.add_argument("--truncation", type=float, default=1.0)
    parser.add_argument("--cache", default="runs/acgan-eval/inception.pt", help="Inception features of the held-out faces and the last evaluations' samples")
    parser.add_argument("--against", metavar="FOLDER", help="an ACGAN folder measured in the same run")
    parser.add_argument("--output", help="write the report as JSON here")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    held = TaggedFaces(split_tags(read_tags(args.data))[1])
    cache = Path(args.cache) if args.cache else None
    report = {"weights": args.weights,
              "stylegan": evaluate(Generator.from_pretrained(args.weights), held, args.samples, args.real, cache, args.truncation)}
    if args.against:
        from cartoon.acgan.model import Generator as AvatarGenerator

        acgan = AvatarGenerator.from_pretrained(args.against).eval()
        per_pair = -(-args.samples // (acgan.hair_classes * acgan.eye_classes))
        images = avatar_eval.sample_every_pair(acgan, per_pair)[0]
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:args.samples]
        report["acgan"] = {"weights": args.against,
                           **avatar_eval.fid_kid(avatar_eval.real_subset(held, args.real), as_uint8(images[order]), cache)}
        print(f"ACGAN: FID {report['acgan']['fid']:.2f}, KID×100 {100 * report['acgan']['kid']:.2f}")
    avatar_eval.publish(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
