"""Blend two TwinGAN exports of one lineage weight by weight (a model soup, Wortsman et al. 2022).

    python -m cartoon.twingan.blend runs/exp-a runs/exp-b --share 0.3 --out runs/blend-0.3   # 70% a, 30% b
    python -m cartoon.twingan.blend runs/exp-a runs/exp-b --share 0 --coarse-share 1 --coarse-to 16 --out runs/swap-16

Two runs trained apart from one checkpoint for a short while, under the same frozen batch-norm
statistics, stay in one basin: the straight line between their weights is a family of models
between their trade-offs, each drawn at no training cost. The final phase's main run and its pose
arm are such a pair: one buys the anime look with pose, the other pose with the look.

A blend can also give the coarse layers a share of their own (`--coarse-share`, `--coarse-to`): the
layer swap Pinkney & Adler (2020) used to toonify StyleGAN faces, where the layers working at low
resolution set the layout and the fine ones the drawing. Here it asks whether one run's layout can
be drawn with the other's strokes; unlike theirs, the swap splits the shared encoder too, by the
side each block works at.
"""

from __future__ import annotations

import argparse
import copy

import torch

from cartoon.twingan.model import TwinGAN


def working_side(key: str, resolution: int) -> int:
    """The side of the feature map a weight works at: its block's, the image's for the colour
    convolutions, and 4 for the code (bottleneck and the generator's start)."""
    part, _, rest = key.partition(".")
    if part in ("encoder", "generator"):
        return int(rest.split(".")[0])
    if part in ("from_rgb", "to_rgb"):
        return resolution
    if part in ("bottleneck", "start", "start_norm"):
        return 4
    raise ValueError(f"no working side known for {key!r}: a layer the swap does not know of")


def blend(a: TwinGAN, b: TwinGAN, share: float, coarse_share: float | None = None, coarse_to: int = 4) -> TwinGAN:
    """A copy of `a` with every float tensor (1 − share)·a + share·b; counters stay `a`'s.

    With `coarse_share`, the weights working at `coarse_to`² or coarser (`working_side`) take that
    share instead.
    """
    for name, value in (("share", share), ("coarse_share", share if coarse_share is None else coarse_share)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], not {value}")
    mine, theirs = a.state_dict(), b.state_dict()
    if {k: v.shape for k, v in mine.items()} != {k: v.shape for k, v in theirs.items()}:
        raise ValueError("only models of one design blend: the same layers, sizes and skips")

    def share_of(key):
        coarse = coarse_share is not None and working_side(key, a.resolution) <= coarse_to
        return coarse_share if coarse else share

    model = copy.deepcopy(a)
    model.load_state_dict({key: torch.lerp(value, theirs[key], share_of(key)) if value.is_floating_point() else value
                           for key, value in mine.items()})
    return model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="a saved model folder (config.json + model.safetensors)")
    parser.add_argument("b", help="another, of the same config")
    parser.add_argument("--share", type=float, required=True, help="b's share of every weight (0: a, 1: b)")
    parser.add_argument("--coarse-share", type=float, help="b's share of the weights working at --coarse-to² or coarser instead")
    parser.add_argument("--coarse-to", type=int, default=4, help="the finest side counted coarse (4: the code only)")
    parser.add_argument("--out", required=True, help="folder to save the blend to")
    args = parser.parse_args(argv)
    blended = blend(TwinGAN.from_pretrained(args.a), TwinGAN.from_pretrained(args.b), args.share, args.coarse_share, args.coarse_to)
    blended.save_pretrained(args.out)
    coarse = "" if args.coarse_share is None else f" (at {args.coarse_to}² and coarser: b's share {args.coarse_share:.2f})"
    print(f"{1 - args.share:.2f} × {args.a} + {args.share:.2f} × {args.b}{coarse} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
