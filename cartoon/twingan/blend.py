"""Blend two TwinGAN exports of one lineage weight by weight (a model soup, Wortsman et al. 2022).

    python -m cartoon.twingan.blend runs/exp-a runs/exp-b --share 0.3 --out runs/blend-0.3   # 70% a, 30% b

Two runs trained apart from one checkpoint for a short while, under the same frozen batch-norm
statistics, stay in one basin: the straight line between their weights is a family of models
between their trade-offs, each drawn at no training cost. The final phase's main run and its pose
arm are such a pair: one buys the anime look with pose, the other pose with the look.
"""

from __future__ import annotations

import argparse
import copy

import torch

from cartoon.twingan.model import TwinGAN


def blend(a: TwinGAN, b: TwinGAN, share: float) -> TwinGAN:
    """A copy of `a` with every float tensor (1 − share)·a + share·b; counters stay `a`'s."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be within [0, 1], not {share}")
    mine, theirs = a.state_dict(), b.state_dict()
    if {k: v.shape for k, v in mine.items()} != {k: v.shape for k, v in theirs.items()}:
        raise ValueError("only models of one design blend: the same layers, sizes and skips")
    model = copy.deepcopy(a)
    model.load_state_dict({key: torch.lerp(value, theirs[key], share) if value.is_floating_point() else value
                           for key, value in mine.items()})
    return model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="a saved model folder (config.json + model.safetensors)")
    parser.add_argument("b", help="another, of the same config")
    parser.add_argument("--share", type=float, required=True, help="b's share of every weight (0: a, 1: b)")
    parser.add_argument("--out", required=True, help="folder to save the blend to")
    args = parser.parse_args(argv)
    blended = blend(TwinGAN.from_pretrained(args.a), TwinGAN.from_pretrained(args.b), args.share)
    blended.save_pretrained(args.out)
    print(f"{1 - args.share:.2f} × {args.a} + {args.share:.2f} × {args.b} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
