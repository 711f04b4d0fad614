"""Reconstruction pre-training: the generator learns to give the photo back (L1), so that full
training starts from a network that already preserves content.

    python -m cartoon.whitebox.pretrain --steps 3000 --threads 1
    python -m cartoon.whitebox.pretrain --export my_pretrain          # the generator and its optimiser's state
    python -m cartoon.whitebox.pretrain --resume-from my_pretrain --run-dir runs/pretrain2 --steps 6000   # go on elsewhere
    torchrun --nproc_per_node 4 -m cartoon.whitebox.pretrain --photos my/photos
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from cartoon.data import forever
from cartoon.training import (
    DecayingRates,
    Distributed,
    Run,
    StopRequest,
    add_common_args,
    autocast,
    evaluating,
    memory_format,
    seed_everything,
    set_threads,
    unwrap,
)
from cartoon.training_state import export_training_state, parse_resumable, read_training_state
from cartoon.whitebox.data import add_data_args, image_dataset
from cartoon.whitebox.model import Generator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "whitebox_pretrain")
    add_data_args(parser)
    parser.add_argument("--export", metavar="FOLDER", help="only write RUN/checkpoint.pt's generator (save_pretrained) "
                        "and its training state to FOLDER")
    parser.set_defaults(steps=3000, batch_size=16)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return parse_resumable(build_parser(), argv)


def build_models(args, device) -> dict:
    """The generator, in the run's memory order, and its optimiser."""
    generator = Generator(channels=args.channels, blocks=args.blocks).to(device, memory_format=memory_format(args))
    return dict(generator=generator, optimizer=torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.99)))


def reconstruction_step(args, model, optimizer, photo: torch.Tensor) -> torch.Tensor:
    """One L1 reconstruction update on a batch of photos; returns the loss."""
    photo = photo.contiguous(memory_format=memory_format(args))
    with autocast(args, photo.device):
        loss = F.l1_loss(model(photo), photo)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def export(args) -> Path:
    """The run's generator as a `save_pretrained` folder, with the training state `--resume-from`
    continues from (`cartoon.training_state`); there is no EMA, so the generator is model.safetensors."""
    payload = Run(args.run, main=False).read_checkpoint()
    # the run's own arguments, not this command's defaults, built the model and go into training.json
    recorded = Run.arguments(payload, args)
    models = build_models(recorded, "cpu")
    step = Run.restore(payload, **models)
    folder = Path(args.export)
    # contiguous: older safetensors (requirements.txt allows 0.4) refuse a channels-last run's weights
    models["generator"].to(memory_format=torch.contiguous_format).save_pretrained(str(folder))
    written = export_training_state(folder, step, recorded, optimizer=models["optimizer"])
    print(f"step {step} generator and training state ({written['state_bytes'] / 1e6:.1f} MB) of {args.run} -> {folder}")
    return folder


def main(argv=None):
    args = parse_args(argv)
    if args.export:
        return export(args)
    set_threads(args.threads)
    dist = Distributed(args.device)
    seed_everything(args.seed + dist.rank)
    run = Run(args.run, dist.main)

    models = build_models(args, dist.device)
    generator, optimizer = models.values()
    step = 0
    if args.resume:
        step = run.load_checkpoint(dist.device, **models)
    elif args.resume_from:
        step = Run.restore(read_training_state(args.resume_from, ema_key="generator"), **models)
    model = dist.wrap(generator)
    photos = forever(dist.loader(image_dataset(args.photos, args.size), args.batch_size, args.workers, args.seed))
    preview = next(photos)[:8].to(dist.device)

    bar = tqdm(range(step, args.steps), initial=step, total=args.steps, disable=not dist.main, desc="pretrain")
    rates = DecayingRates([optimizer], args.lr_decay_from, args.steps)
    with StopRequest(dist) as stop_requested:
        for step in bar:
            lr = args.lr * rates(step)
            loss = reconstruction_step(args, model, optimizer, next(photos).to(dist.device))

            done = step + 1
            stopped = stop_requested()
            if done % args.log_every == 0 or stopped:
                value = dist.mean(loss.detach()).item()
                run.log(done, reconstruction=value, lr=lr)
                bar.set_postfix(l1=f"{value:.4f}")
            if done % args.sample_every == 0 or done == args.steps:
                with evaluating(generator):
                    run.save_grid(done, torch.cat([preview, generator(preview)]), rows=len(preview))
            if done % args.save_every == 0 or done == args.steps or stopped:
                run.save_checkpoint(done, generator=unwrap(model), optimizer=optimizer, args=vars(args))
            if stopped:
                break
        dist.close()


if __name__ == "__main__":
    main()
