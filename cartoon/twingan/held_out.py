"""What the TwinGAN evaluation runs on: the generator under test and the held-out faces it translates.

Only the held-out split of each data folder is scored (`cartoon.data.split`), so a model is never
judged on faces it trained on; the gender probe alone learns from the train split.
"""

from __future__ import annotations

import random

import torch

from cartoon import data
from cartoon.images import open_image
from cartoon.training import Run
from cartoon.twingan import square_tensor
from cartoon.twingan.checkpoint import exported_generator
from cartoon.twingan.framing import framed
from cartoon.twingan.metrics import BATCH
from cartoon.twingan.model import TwinGAN
from cartoon.twingan.options import build_parser


def sampled(files: list, limit: int, rng: random.Random) -> list:
    """At most `limit` of `files`, drawn by `rng` (0: all of them, in order)."""
    return rng.sample(files, min(limit, len(files))) if limit else files


def held_out(folder, limit: int, rng: random.Random) -> list:
    return sampled(data.split(folder)[1], limit, rng)


def load_faces(files, resolution: int, framing: str = "raw") -> torch.Tensor:
    """`files` as model inputs; `framing` "photos" cuts anime portraits to the photos' framing."""
    return torch.cat([square_tensor(framed(open_image(f).image, framing), resolution) for f in files])


@torch.no_grad()
def translate(model: TwinGAN, images: torch.Tensor, domain: int, colours=None) -> torch.Tensor:
    """`images` translated into `domain` in batches; `colours`, (hair, eyes) indices per image, ask a
    colour-conditioned model for them."""
    def asked(i):
        return tuple(c[i : i + BATCH] for c in colours) if colours is not None else None

    return torch.cat([model(images[i : i + BATCH], domain, colours=asked(i)) for i in range(0, len(images), BATCH)])


def load_generator(args) -> TwinGAN:
    if args.weights:
        print(f"{args.weights}: the saved model")
        return TwinGAN.from_pretrained(args.weights).eval()
    if args.run:
        payload = Run(args.run, main=False).read_checkpoint()
        print(f"{args.run}: EMA generator at step {payload['step']}, as export would write it")
        # The checkpoint's running statistics are the raw generator's last few batches, not the
        # average's: measured with them, a run scores unlike the model it would ship (selfie KID×100 15.5 against 13.1).
        export_flags = build_parser().parse_args(["--norm-batches", str(args.norm_batches), "--threads", str(args.threads)])
        return exported_generator(payload, export_flags)
    from cartoon.hub import load_model

    return load_model("twingan", device="cpu")  # the evaluation feeds CPU tensors
