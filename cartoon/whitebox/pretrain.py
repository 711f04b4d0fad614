"""Reconstruction pre-training: the generator learns to give the photo back (L1), so that full
training starts from a network that already preserves content.

    python -m cartoon.whitebox.pretrain --steps 3000 --threads 1
    torchrun --nproc_per_node 4 -m cartoon.whitebox.pretrain --photos my/photos
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from tqdm import tqdm

from cartoon.training import Distributed, Run, add_common_args, evaluating, forever, seed_everything, set_threads, unwrap
from cartoon.whitebox.data import add_data_args, image_dataset
from cartoon.whitebox.model import Generator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "whitebox_pretrain")
    add_data_args(parser)
    parser.set_defaults(steps=3000, batch_size=16)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    dist = Distributed(args.device)
    seed_everything(args.seed + dist.rank)
    run = Run(args.run, dist.main)

    generator = Generator(channels=args.channels, blocks=args.blocks).to(dist.device)
    optimizer = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.99))
    step = run.load_checkpoint(dist.device, generator=generator, optimizer=optimizer) if args.resume else 0
    model = dist.wrap(generator)
    photos = forever(dist.loader(image_dataset(args.photos, args.size), args.batch_size, args.workers, args.seed))
    preview = next(photos)[:8].to(dist.device)

    bar = tqdm(range(step, args.steps), initial=step, total=args.steps, disable=not dist.main, desc="pretrain")
    for step in bar:
        photo = next(photos).to(dist.device)
        loss = F.l1_loss(model(photo), photo)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        done = step + 1
        if done % args.log_every == 0:
            value = dist.mean(loss.detach()).item()
            run.log(done, reconstruction=value)
            bar.set_postfix(l1=f"{value:.4f}")
        if done % args.sample_every == 0 or done == args.steps:
            with evaluating(generator):
                run.save_grid(done, torch.cat([preview, generator(preview)]), rows=len(preview))
        if done % args.save_every == 0 or done == args.steps:
            run.save_checkpoint(done, generator=unwrap(model), optimizer=optimizer, args=vars(args))
    dist.close()


if __name__ == "__main__":
    main()
