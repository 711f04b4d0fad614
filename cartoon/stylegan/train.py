"""Train the style-based generator on the training split of the tagged anime faces.

    nice python -m cartoon.stylegan.train --threads 1 --steps 100000     # ../shared/data/anime_tags, runs/stylegan
    python -m cartoon.stylegan.train --resume --steps 150000              # continue the same run
    python -m cartoon.stylegan.train --export weights/stylegan            # ship the EMA generator and the training state
    python -m cartoon.stylegan.train --resume-from weights/stylegan --run-dir runs/stylegan2 --steps 200000
    python -m cartoon.stylegan.train --condition colours --init-from weights/stylegan --run-dir runs/acgan-v3   # avatars v3

One process (no torchrun). Each step: the critic's non-saturating logistic loss on real faces
against one batch of generated faces, then the generator's on the same faces; every
`--r1-every` steps the critic also pays R1 (its gradient norm on real faces), scaled by the
interval (lazy regularisation, StyleGAN2), with Adam's settings adjusted to match. Every image
the critic sees goes through DiffAugment (`cartoon.augment`). `--mixing` of the batches are
drawn from two w's switching at a random layer, so neighbouring styles do not learn to depend
on each other. The EMA generator is what samples, snapshots and exports are made of; the live
generator tracks the mean w that truncation pulls toward, and the EMA copies it.
Held-out faces (`cartoon.acgan.data.split_tags`) never reach training.

`--condition colours` trains the avatar sampler's version 3, an ACGAN on this generator: the
generator takes hair and eye colours (drawn for its faces uniformly over the pairs the training
faces have), the critic's hair and eye heads learn the colours of real faces, and the generator
is paid for faces they read as asked, both terms weighted by `--cls-weight`. The heads read
faces translated only: DiffAugment's colour jitter would change the label and its cutout hide
the eyes. `--init-from` starts it from an unconditional export, whose faces the new generator
draws unchanged until it learns colours (`cartoon.stylegan.model`). The colour terms pull each
pair toward a few faces easy to classify (within-pair diversity 0.44 at step 1,000 against 1.17
for real faces); `--mode-seeking`, MSGAN's term as the v2 ACGAN trains with it, pays the
generator for faces of one pair that differ as their z's do. `--twin-weight` goes at that pull
itself (TAC-GAN): twin heads learn the colours of generated faces, and the generator is paid for
(a share of) their error as it pays for the critic's heads', so faces easier to read than real ones
stop paying. `--thumbnail-weight` pays the generator for hair that a reader of 16² thumbnails,
learnt on real faces beside the critic, reads as asked: colour alone can satisfy it
(`cartoon.stylegan.colour_readers`). `--colour-styles` gives the colours to the last styles directly as well
(`cartoon.stylegan.model`); a run without them resumes into one with them, the offsets starting at zero.
`--frozen-readers` pays the generator for colours as the critic's heads and the thumbnail reader read
them when a resumed colour run first takes the flag, frozen: as the rate falls in an anneal the live
heads fit the training faces (their loss on real faces 0.08 → 0.01 in v4's) and the generator then
pleases them with colours an independent judge no longer reads; frozen ones cannot move.
`--disputes` leaves out training faces whose hair tag classifiers that never saw them read
otherwise (`cartoon.acgan.disputes`): the tagger's noise is what makes "white" grey-brown.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from cartoon.acgan.data import add_data_args, training_faces
from cartoon.acgan.evaluate import GRID_PAIRS
from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.data import forever
from cartoon.stylegan.colour_readers import ThumbnailHair, TwinClassifier
from cartoon.stylegan.critic import Discriminator
from cartoon.stylegan.model import CONDITION_PARTS, Generator
from cartoon.stylegan.step import train_step
from cartoon.training import (
    DecayingRates,
    Run,
    StopRequest,
    add_common_args,
    add_render_precision_arg,
    evaluating,
    ignore_stop_signals,
    memory_format,
    seed_everything,
    set_threads,
)
from cartoon.training_state import export_run, parse_resumable, read_training_state

GRID_SIDE = 8  # the sample grid: 8×8 faces of fixed z and fixed noise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "stylegan")
    add_data_args(parser)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=256, help="size of z and w")
    parser.add_argument("--mapping-layers", type=int, default=4)
    parser.add_argument("--max-channels", type=int, default=64, help="channel cap of generator and critic (cost grows as its square)")
    parser.add_argument("--r1", type=float, default=0.1, help="gamma of the R1 penalty on real faces")
    parser.add_argument("--r1-every", type=int, default=16, help="steps between R1 penalties (lazy regularisation)")
    parser.add_argument("--mixing", type=float, default=0.9, help="share of batches drawn with two w's (style-mixing regularisation)")
    parser.add_argument("--diffaugment", default="color,translation,cutout", help="DiffAugment policy, or 'none'")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--snapshot-every", type=int, default=5000, help="save the EMA generator for evaluation")
    parser.add_argument("--export", metavar="FOLDER", help="only write RUN/checkpoint.pt's EMA generator (save_pretrained) "
                        "and its training state to FOLDER")
    parser.add_argument("--condition", choices=("none", "colours"), default="none",
                        help="colours: condition on hair and eye colour, with the critic's ACGAN heads (avatars v3)")
    add_render_precision_arg(parser)
    parser.add_argument("--cls-weight", type=float, default=1.0, help="lambda on the hair and eye classification terms")
    parser.add_argument("--mode-seeking", type=float, default=0.0, help="with --condition: lambda on MSGAN's mode-seeking "
                        "term against faces repeating inside a colour pair (0: off)")
    parser.add_argument("--twin-weight", type=float, default=0.0, help="with --condition: TAC-GAN's twin heads, which learn "
                        "the colours of generated faces; the generator is paid this share of their error against the critic's "
                        "reading (1: TAC-GAN; 0: no twin heads)")
    parser.add_argument("--thumbnail-weight", type=float, default=0.0, help="with --condition: lambda on the hair "
                        "colour a thumbnail reader, learnt on real faces, reads in generated ones (0: no reader)")
    parser.add_argument("--thumbnail-size", type=int, default=16, help="the side of the thumbnails the hair reader sees")
    parser.add_argument("--frozen-readers", action=argparse.BooleanOptionalAction, default=False, help="with --condition: the generator's colour terms "
                        "read faces through a frozen copy of the critic (and a frozen thumbnail reader) as they were when "
                        "the flag was first given, while the live critic trains on; a resume keeps it (--no-frozen-readers: off)")
    parser.add_argument("--colour-styles", type=int, default=0, help="with --condition: how many of the last styles the "
                        "colours offset directly, besides entering the mapping (0: mapping only)")
    parser.add_argument("--init-from", metavar="FOLDER", help="a fresh run starts from this export's EMA generator and critic "
                        "(an unconditional one is fine: the colour parts start fresh)")
    # equalized learning rate makes StyleGAN2's 0.002 the right size for every layer
    parser.set_defaults(lr=0.002, batch_size=16, workers=0, log_every=25, sample_every=500, save_every=250)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return parse_resumable(build_parser(), argv)


def build_models(args, device) -> dict:
    """Generator, critic, EMA generator and both optimisers, in the run's memory order, and the
    colour readers the flags ask for: twin heads, thumbnail reader, frozen critic."""
    fmt = memory_format(args)
    classes = dict(hair_classes=len(HAIR_COLOURS), eye_classes=len(EYE_COLOURS)) if args.condition == "colours" else {}
    # avatars (the conditional generator's use) are drawn in the precision the run started in
    avatar = dict(render_precision=args.render_precision, colour_styles=args.colour_styles) if classes else {}
    generator = Generator(args.resolution, args.latent_dim, args.mapping_layers, args.max_channels, **classes, **avatar)
    generator = generator.to(device, memory_format=fmt)
    discriminator = Discriminator(args.resolution, args.max_channels, **classes).to(device, memory_format=fmt)
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    # the critic steps once more every r1_every steps: Adam's rate and decays shrink to match (StyleGAN2)
    lazy = args.r1_every / (args.r1_every + 1)
    # the colour-style offsets have their own optimiser, so a run without them resumes into one with them
    weights = [p for name, p in generator.named_parameters() if name != "colour_styles"]
    opt_g = torch.optim.Adam(weights, lr=args.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=args.lr * lazy, betas=(0.0, 0.99**lazy))
    models = dict(generator=generator, discriminator=discriminator, ema=ema, opt_g=opt_g, opt_d=opt_d)
    if generator.colour_styles is not None:
        models["opt_colour_styles"] = torch.optim.Adam([generator.colour_styles], lr=args.lr, betas=(0.0, 0.99))
    if classes and args.twin_weight > 0:  # its own optimiser, so a run without it resumes into one with it
        models["twin"] = TwinClassifier(discriminator).to(device)
        models["opt_twin"] = torch.optim.Adam(models["twin"].parameters(), lr=args.lr, betas=(0.0, 0.99))
    frozen = bool(classes) and args.frozen_readers
    if frozen and args.twin_weight > 0:
        raise ValueError("--frozen-readers with --twin-weight: the twin would learn on the live critic's features, "
                         "which the frozen critic the generator reads no longer shares")
    if classes and args.thumbnail_weight > 0:  # as the twin: its own optimiser, so older runs resume into it
        models["thumb"] = ThumbnailHair(classes["hair_classes"], args.thumbnail_size).to(device).requires_grad_(not frozen)
        if not frozen:  # a reader learns when it has an optimiser
            models["opt_thumb"] = torch.optim.Adam(models["thumb"].parameters(), lr=args.lr, betas=(0.5, 0.99))
    if frozen:  # starts as the critic the run restores (`start_frozen_readers`), then never learns
        models["frozen_critic"] = copy.deepcopy(discriminator).requires_grad_(False)
    return models


def initialise(models: dict, folder: str):
    """Start a fresh run from an export: its EMA generator as generator and EMA, its critic as critic.

    Parts the export lacks may only be the colour condition's (`CONDITION_PARTS`), left as built."""
    payload = read_training_state(folder)
    for name, source in (("generator", "ema"), ("ema", "ema"), ("discriminator", "discriminator")):
        missing, unexpected = models[name].load_state_dict(payload[source], strict=False)
        foreign = unexpected + [key for key in missing if not key.startswith(CONDITION_PARTS)]
        if foreign:
            raise ValueError(f"{folder}'s {source} does not fit this run's {name}: {', '.join(foreign[:5])}")


def add_colour_styles(payload: dict, models: dict):
    """Give a payload from a run without colour-style offsets this run's (zero) ones, so it restores."""
    for name in ("generator", "ema"):
        if models[name].colour_styles is not None and "colour_styles" not in payload[name]:
            payload[name] = {**payload[name], "colour_styles": models[name].colour_styles.detach().clone()}


def start_frozen_readers(models: dict, payload: dict):
    """A run first given `--frozen-readers` freezes its critic as restored; a run that has its frozen
    critic keeps it. The thumbnail reader is frozen as restored.

    Only readers that have learnt are worth freezing: a run whose payload lacks them (a fresh run, or
    one adding the thumbnail reader now) would pay its generator for what random weights read."""
    if "frozen_critic" not in models:
        return
    unlearnt = [name for name in ("discriminator", "thumb") if name in models and name not in payload]
    if unlearnt:
        raise ValueError(f"--frozen-readers freezes colour readers a run has learnt, and this run has not learnt its "
                         f"{' or '.join(unlearnt)} yet: resume a colour run (--resume, --resume-from) with it")
    if "frozen_critic" not in payload:
        models["frozen_critic"].load_state_dict(models["discriminator"].state_dict())


def shippable(generator: Generator) -> Generator:
    """A copy to save: contiguous (safetensors stores only contiguous tensors, and a channels-last
    run's weights are not), with a conditional generator's per-pair mean w measured."""
    generator = copy.deepcopy(generator).to(memory_format=torch.contiguous_format)
    if generator.conditional:
        generator.measure_pair_w_avg()
    return generator


def grid_faces(ema: Generator, device) -> torch.Tensor:
    """8×8 faces of fixed z and noise; a conditional generator's in the avatar grid's 8 colour pairs, one a row."""
    z = torch.randn(GRID_SIDE**2, ema.latent_dim, generator=torch.Generator().manual_seed(1234)).to(device)
    colours = {}
    if ema.conditional:
        pairs = torch.tensor([(HAIR_COLOURS.index(h), EYE_COLOURS.index(e)) for h, e in GRID_PAIRS[:GRID_SIDE]])
        z = z[:GRID_SIDE].repeat(GRID_SIDE, 1)  # the same faces in every row
        colours = dict(hair=pairs[:, 0].repeat_interleave(GRID_SIDE).to(device), eyes=pairs[:, 1].repeat_interleave(GRID_SIDE).to(device))
    with evaluating(ema):
        return ema(z, noise="fixed", **colours).clamp(-1, 1)


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the last logged values."""
    set_threads(args.threads)
    seed_everything(args.seed)
    device = torch.device(args.device)
    run = Run(args.run)

    dataset = training_faces(args, size=args.resolution)
    loader = DataLoader(dataset, args.batch_size, shuffle=True, num_workers=args.workers, drop_last=len(dataset) >= args.batch_size,
                        generator=torch.Generator().manual_seed(args.seed), worker_init_fn=ignore_stop_signals)
    models = build_models(args, device)
    step, payload = 0, {}
    if args.resume:
        payload = run.read_checkpoint(device)
    elif args.resume_from:
        payload = read_training_state(args.resume_from)
    elif args.init_from:
        initialise(models, args.init_from)
    if payload:
        add_colour_styles(payload, models)
        step = Run.restore(payload, **models)
    if "twin" in models and "twin" not in payload:
        models["twin"].start_from(models["discriminator"])
    start_frozen_readers(models, payload)
    # the (hair, eyes) pairs the training faces have, that generated faces are drawn from
    pairs = torch.unique(torch.stack([dataset.hair, dataset.eyes], 1), dim=0).to(device) if args.condition == "colours" else None
    # a resumed run draws other batches and noise than a fresh one, not the same ones again
    seed_everything(args.seed + step)
    batches = forever(loader)
    print(f"{len(dataset)} training faces, {sum(p.numel() for p in models['generator'].parameters()) / 1e6:.2f}M generator parameters")

    values: dict = {}
    sums: dict = {}
    counts: dict = {}
    started, started_step = time.time(), step
    rates = DecayingRates(models.values(), args.lr_decay_from, args.steps)
    progress = tqdm(total=args.steps, initial=step, desc="stylegan", dynamic_ncols=True)
    with StopRequest() as stop_requested:
        while step < args.steps:
            lr = args.lr * rates(step)
            real, hair, eyes = (t.to(device) for t in next(batches))
            measured = train_step(args, models, real, step, None if pairs is None else (hair, eyes, pairs))
            step += 1
            progress.update(1)
            stopped = stop_requested()

            for key, value in measured.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
                counts[key] = counts.get(key, 0) + 1
            if step % args.log_every == 0 or step == args.steps or stopped:
                values = {key: total / counts[key] for key, total in sums.items()}
                values["steps_per_second"] = (step - started_step) / (time.time() - started)
                run.log(step, **values, lr=lr)
                progress.set_postfix(d=f"{values['loss_d']:.2f}", g=f"{values['loss_g']:.2f}")
                sums, counts = {}, {}
            if step % args.sample_every == 0 or step == args.steps:
                run.save_grid(step, grid_faces(models["ema"], device), rows=GRID_SIDE)
            if step % args.snapshot_every == 0:
                shippable(models["ema"]).save_pretrained(str(run.folder / "snapshots" / f"step_{step:06d}"))
            if step % args.save_every == 0 or step == args.steps or stopped:
                run.save_checkpoint(step, **models, args=vars(args))
            if stopped:
                break
        progress.close()
    return values


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.export:
        export_run(args, build_models, shippable)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
