"""Seconds per training step of the style-based generator, fp32 against bf16 + channels-last.

    nice python bench/stylegan_train.py                         # 64², batch 16, 1 thread, max_channels 64
    nice python bench/stylegan_train.py --max-channels 128 --threads 2

The trainer's own `train_step` on random faces, timed by `train_speed.measure`: the settings take
turns within every round, so a shared machine slows them alike, and each row gives the median,
the spread and the ratio to fp32 in the same run. Steps with and without the lazy R1 penalty
are timed apart; the mean step costs (r1_every - 1) plain steps and one R1 step, over r1_every.
"""

from __future__ import annotations

import argparse

import torch
from train_speed import SETTINGS, measure


def stylegan_step(max_channels: int, batch: int, with_r1: bool):
    from cartoon.stylegan.step import train_step
    from cartoon.stylegan.train import build_models, parse_args

    def build(precision, channels_last):
        args = parse_args(["--precision", precision, "--channels-last" if channels_last else "--no-channels-last",
                           "--max-channels", str(max_channels), "--batch-size", str(batch)])
        models = build_models(args, "cpu")
        real = torch.rand(batch, 3, args.resolution, args.resolution) * 2 - 1
        step = 0 if with_r1 else 1  # R1 falls on the multiples of r1_every
        return (lambda: train_step(args, models, real, step)), batch

    return build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-channels", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {label: SETTINGS[label] for label in ("fp32", "bf16+channels-last")}
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, max_channels {args.max_channels}")
    plain = measure("stylegan step", stylegan_step(args.max_channels, args.batch_size, False), settings, args.rounds)
    r1 = measure("stylegan step with R1", stylegan_step(args.max_channels, args.batch_size, True), settings, args.rounds)
    from cartoon.stylegan.train import parse_args

    every = parse_args([]).r1_every
    print(f"\nmean step with R1 every {every}:")
    for label in settings:
        print(f"  {label:<24} {((every - 1) * plain[label] + r1[label]) / every:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
