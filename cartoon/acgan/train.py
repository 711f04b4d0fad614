"""Train the ACGAN avatar generator on a tagged folder of faces.

    python -m cartoon.acgan.train --threads 1                     # ../shared/data/anime_tags, runs/acgan
    python -m cartoon.acgan.train --resume --steps 20000          # continue the same run
    python -m cartoon.acgan.train --export weights/acgan          # ship the EMA generator and the training state
    python -m cartoon.acgan.train --resume-from weights/acgan --run-dir runs/acgan2 --steps 80000   # go on elsewhere
    torchrun --nproc_per_node 4 -m cartoon.acgan.train --device cuda

Losses: hinge for realness; cross-entropy for hair and eyes weighted by `--cls-weight`, the
discriminator learning to classify *real* faces only (a clean colour judge) and the generator
learning to make its faces classified as the colours it was asked for. DiffAugment
(translation + cutout, never colour: colour is the label) is applied to every image the
discriminator sees; the colour heads read the translated faces without the cutout, which would
often hide the eyes. MSGAN's mode-seeking term (`--mode-seeking`) keeps the faces of one colour
pair apart: without it the auxiliary classifier's pull toward faces easy to classify left each
pair a few near-copies (docs/acgan-experiments.md has the measurements).
Every `--snapshot-every` steps the EMA generator is saved with
`save_pretrained` under `RUN/snapshots/` so evaluation can pick the best one.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from cartoon.acgan.data import HELD_OUT_PER_PAIR, TaggedFaces, read_tags, split_tags
from cartoon.acgan.model import Discriminator, Generator
from cartoon.data import ANIME_TAGS, forever
from cartoon.training import (
    DecayingRates,
    Distributed,
    Run,
    StopRequest,
    add_common_args,
    add_render_precision_arg,
    autocast,
    evaluating,
    hinge_critic_loss,
    measure_batchnorm_statistics,
    memory_format,
    seed_everything,
    set_threads,
    unwrap,
    update_ema,
)
from cartoon.training_state import export_run, parse_resumable, read_training_state


def translate(images: torch.Tensor) -> torch.Tensor:
    """Random translation by up to 1/8 of the side, reflecting at the border (DiffAugment, Zhao et al. 2020)."""
    n, _, h, w = images.shape
    shift = h // 8
    padded = F.pad(images, (shift, shift, shift, shift), mode="reflect")
    dy = torch.randint(0, 2 * shift + 1, (n,), device=images.device)
    dx = torch.randint(0, 2 * shift + 1, (n,), device=images.device)
    rows = (torch.arange(h, device=images.device)[None, :] + dy[:, None])[:, None, :, None].expand(n, 3, h, w)
    cols = (torch.arange(w, device=images.device)[None, :] + dx[:, None])[:, None, None, :].expand(n, 3, h, w)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(3, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def cut_out(images: torch.Tensor) -> torch.Tensor:
    """Zero one random square of half the side per image (DiffAugment's cutout)."""
    n, _, h, w = images.shape
    size = h // 2
    cy = torch.randint(0, h - size + 1, (n, 1, 1), device=images.device)
    cx = torch.randint(0, w - size + 1, (n, 1, 1), device=images.device)
    ys = torch.arange(h, device=images.device)[None, :, None]
    xs = torch.arange(w, device=images.device)[None, None, :]
    keep = ~((ys >= cy) & (ys < cy + size) & (xs >= cx) & (xs < cx + size))
    return images * keep[:, None].to(images.dtype)


def judge(discriminator, images: torch.Tensor):
    """Realness of translated + cut-out images; hair and eye logits of the same images translated only.

    Cutout hides the eyes in about half the faces, which would make the eye label noise for the
    colour heads; realness needs it (both real and fake get it, so it cannot give them away).
    One batch of both views costs less than two discriminator calls (the discriminator has no
    batch norm, so the views do not mix).
    """
    shifted = translate(images)
    score, hair, eyes = discriminator(torch.cat([cut_out(shifted), shifted]))
    n = len(images)
    return score[:n], hair[n:], eyes[n:]


def random_labels(n: int, generator: Generator, device, paired: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Hair and eyes drawn independently and uniformly: every one of the 120 pairs gets trained.

    `paired`: the second half of the batch repeats the first half's labels, so the mode-seeking
    term can compare two faces of one colour pair."""
    count = (n + 1) // 2 if paired else n
    hair = torch.randint(0, generator.hair_classes, (count,), device=device)
    eyes = torch.randint(0, generator.eye_classes, (count,), device=device)
    if paired:
        hair, eyes = hair.repeat(2)[:n], eyes.repeat(2)[:n]
    return hair, eyes


def colour_terms(logits: tuple[torch.Tensor, torch.Tensor], hair: torch.Tensor, eyes: torch.Tensor, which: str) -> dict[str, torch.Tensor]:
    """The colour heads' cross-entropy on `which` ("real" or "fake") faces, and their accuracies, as logged."""
    hair_logits, eye_logits = logits
    return {f"cls_{which}": F.cross_entropy(hair_logits, hair) + F.cross_entropy(eye_logits, eyes),
            f"acc_hair_{which}": (hair_logits.argmax(1) == hair).float().mean(),
            f"acc_eyes_{which}": (eye_logits.argmax(1) == eyes).float().mean()}


def mode_seeking_loss(fake: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019) over the batch's two halves, which share labels: the inverse
    of how far the faces move per unit of noise, small when two noises give different faces."""
    half = len(fake) // 2
    image_distance = (fake[:half] - fake[half:2 * half]).abs().mean(dim=(1, 2, 3))
    noise_distance = (noise[:half] - noise[half:2 * half]).abs().mean(dim=1)
    return 1 / ((image_distance / noise_distance).mean() + 1e-5)


@torch.no_grad()
def recalibrate_batchnorm(generator: Generator, batches: int = 8, batch_size: int = 64, seed: int = 0) -> Generator:
    """A copy of `generator` whose batch-norm statistics are measured on its own weights.

    The EMA generator averages weights but copies the live model's running statistics, which
    belong to other weights; re-measuring them makes the EMA samples match the EMA weights.
    """
    # contiguous: safetensors stores only contiguous tensors, and a channels-last run's weights are not
    calibrated = copy.deepcopy(unwrap(generator)).to(memory_format=torch.contiguous_format)
    device = next(calibrated.parameters()).device
    rng = torch.Generator(device="cpu").manual_seed(seed)

    def forward_pass():
        noise = torch.randn(batch_size, calibrated.noise_dim, generator=rng).to(device)
        hair = torch.randint(0, calibrated.hair_classes, (batch_size,), generator=rng).to(device)
        eyes = torch.randint(0, calibrated.eye_classes, (batch_size,), generator=rng).to(device)
        calibrated(noise, hair, eyes)

    return measure_batchnorm_statistics(calibrated, forward_pass, batches)


def class_grid_inputs(generator: Generator, columns: int, device, seed: int = 1234):
    """Fixed inputs for the sample grid: one row per hair colour, eye colours cycling along the row.

    Column j uses the same noise in every row, so a column shows one face in every hair colour.
    """
    noise = torch.randn(columns, generator.noise_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    rows = generator.hair_classes
    hair = torch.arange(rows, device=device).repeat_interleave(columns)
    eyes = torch.arange(columns, device=device).repeat(rows) % generator.eye_classes
    return noise.repeat(rows, 1), hair, eyes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "acgan")
    parser.add_argument("--data", default=str(ANIME_TAGS), help="folder with tags.csv (file,hair,eyes) and its images")
    parser.add_argument("--held-out-per-pair", type=int, default=HELD_OUT_PER_PAIR, help="faces per (hair, eyes) kept for evaluation")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N training faces only (tests, smoke runs)")
    parser.add_argument("--noise-dim", type=int, default=128)
    parser.add_argument("--width", type=int, default=64, help="generator trunk channels")
    parser.add_argument("--blocks", type=int, default=16, help="generator residual blocks")
    parser.add_argument("--upsample", choices=["resize", "pixel_shuffle"], default="resize", help="generator upsampling")
    add_render_precision_arg(parser)
    parser.add_argument("--d-width", type=int, default=32, help="discriminator base channels")
    parser.add_argument("--cls-weight", type=float, default=1.0, help="lambda on the hair and eye classification terms")
    parser.add_argument("--mode-seeking", type=float, default=1.0,
                        help="lambda on MSGAN's mode-seeking term against faces repeating inside a colour pair (0: off)")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--snapshot-every", type=int, default=1000, help="save the EMA generator for evaluation")
    parser.add_argument("--export", metavar="FOLDER", help="only write RUN/checkpoint.pt's EMA generator (save_pretrained) "
                        "and its training state to FOLDER")
    parser.set_defaults(batch_size=16, workers=0, log_every=25, sample_every=250, save_every=200)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return parse_resumable(build_parser(), argv)


def build_models(args, device):
    """Generator, discriminator, EMA generator and both optimisers, in the run's memory order."""
    fmt = memory_format(args)
    # a generator that started training in bf16 also draws its faces in bf16 (its exported config says so)
    generator = Generator(args.noise_dim, width=args.width, blocks=args.blocks, upsample=args.upsample,
                          render_precision=args.render_precision).to(device, memory_format=fmt)
    discriminator = Discriminator(width=args.d_width).to(device, memory_format=fmt)
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=args.lr, betas=(0.0, 0.99))
    return dict(generator=generator, discriminator=discriminator, ema=ema, opt_g=opt_g, opt_d=opt_d)


def train_step(args, models: dict, real, hair_real, eyes_real, step: int) -> dict[str, torch.Tensor]:
    """One discriminator and one generator update on a batch of real faces; returns what to log."""
    generator, discriminator, ema, opt_g, opt_d = (models[k] for k in ("generator", "discriminator", "ema", "opt_g", "opt_d"))
    device = real.device
    real = torch.where(torch.rand(len(real), 1, 1, 1, device=device) < 0.5, real, real.flip(3)).contiguous(memory_format=memory_format(args))
    hair, eyes = random_labels(len(real), unwrap(generator), device, paired=args.mode_seeking > 0)
    noise = torch.randn(len(real), args.noise_dim, device=device)
    logged = {}
    with autocast(args, device):
        fake = generator(noise, hair, eyes)

        # discriminator: hinge on realness, colour classification on real faces only
        score_real, hair_logits, eyes_logits = judge(discriminator, real)
        score_fake = discriminator(cut_out(translate(fake.detach())))[0]
        real_terms = colour_terms((hair_logits, eyes_logits), hair_real, eyes_real, "real")
        loss_d = hinge_critic_loss(score_real, score_fake) + args.cls_weight * real_terms["cls_real"]
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    # generator: fool the realness head, be classified as the requested colours
    with autocast(args, device):
        score, hair_fake, eyes_fake = judge(discriminator, fake)
        fake_terms = colour_terms((hair_fake, eyes_fake), hair, eyes, "fake")
        loss_g = -score.mean() + args.cls_weight * fake_terms["cls_fake"]
        if args.mode_seeking > 0:
            logged["mode_seeking"] = mode_seeking_loss(fake.float(), noise)
            loss_g = loss_g + args.mode_seeking * logged["mode_seeking"]
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    # early on the average would be mostly the random initialisation: warm the decay up
    update_ema(ema, generator, min(args.ema_decay, (1 + step) / (10 + step)))
    return {
        "loss_d": loss_d,
        "loss_g": loss_g,
        "score_real": score_real.mean(),
        "score_fake": score_fake.mean(),
        **real_terms,
        **fake_terms,
        **logged,
    }


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the last logged values."""
    set_threads(args.threads)
    dist = Distributed(args.device)
    seed_everything(args.seed + dist.rank)
    device = dist.device
    run = Run(args.run, dist.main)

    train_rows, _ = split_tags(read_tags(args.data), args.held_out_per_pair)
    if args.limit:
        train_rows = train_rows[: args.limit]
    dataset = TaggedFaces(train_rows)
    batches = forever(dist.loader(dataset, args.batch_size, args.workers, args.seed))

    models = build_models(args, device)
    generator, discriminator, ema = models["generator"], models["discriminator"], models["ema"]
    step = 0
    if args.resume:
        step = run.load_checkpoint(device, **models)
    elif args.resume_from:
        step = Run.restore(read_training_state(args.resume_from), **models)
    models_wrapped = {**models, "generator": dist.wrap(generator), "discriminator": dist.wrap(discriminator)}
    grid_inputs = class_grid_inputs(ema, 10, device)

    values: dict = {}
    sums: dict = {}
    started, started_step, logged_at = time.time(), step, step
    rates = DecayingRates(models.values(), args.lr_decay_from, args.steps)
    progress = tqdm(total=args.steps, initial=step, disable=not dist.main, desc="acgan", dynamic_ncols=True)
    with StopRequest(dist) as stop_requested:
        while step < args.steps:
            lr = args.lr * rates(step)
            measured = train_step(args, models_wrapped, *(t.to(device) for t in next(batches)), step)
            step += 1
            progress.update(1)
            stopped = stop_requested()

            for key, value in measured.items():
                sums[key] = sums.get(key, 0.0) + float(dist.mean(value.detach()))
            if step % args.log_every == 0 or step == args.steps or stopped:
                # steps since the last log: a run resumed from a stop starts between multiples of --log-every
                values = {key: total / (step - logged_at) for key, total in sums.items()}
                values["steps_per_second"] = (step - started_step) / (time.time() - started)
                run.log(step, **values, lr=lr)
                progress.set_postfix(d=f"{values['loss_d']:.2f}", g=f"{values['loss_g']:.2f}", hair=f"{values['acc_hair_fake']:.2f}")
                sums, logged_at = {}, step
            if step % args.sample_every == 0 or step == args.steps:
                sampler = recalibrate_batchnorm(ema)
                with evaluating(sampler):
                    run.save_grid(step, sampler(*grid_inputs), rows=10)
            if step % args.snapshot_every == 0 and dist.main:
                recalibrate_batchnorm(ema).save_pretrained(str(run.folder / "snapshots" / f"step_{step:06d}"))
            if step % args.save_every == 0 or step == args.steps or stopped:
                run.save_checkpoint(step, **models, args=vars(args))
            if stopped:
                break
        progress.close()
        dist.close()
    return values


def export(args: argparse.Namespace) -> Path:
    """The run's EMA generator, batch norm re-measured, as a shippable `save_pretrained` folder,
    with the training state `--resume-from` continues from (`cartoon.training_state`)."""
    return export_run(args, build_models, recalibrate_batchnorm)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.export:
        export(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
