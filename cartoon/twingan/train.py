"""Train TwinGAN on two folders of faces, human photos and anime portraits, and export it for the app.

The current line (docs/twingan-experiments.md, "The long run"): wide and colour-conditioned, from scratch
on the project's data (the train splits of the selfie2anime photos with UTKFace and of its anime
portraits), resumed each session with `--resume`:

    python -m cartoon.twingan.train --run-dir runs/twingan-long --resolution 128 --width 16 --max-width 256 \\
      --colour-condition --steps 30000 --threads 1

Its final phase went on from an export of the main run (its 16,000, then `weights/twingan-candidate`,
which now holds the main run's 20,000) with the rate falling to 0 and the batch norms trained under the
statistics they ship with; the shipped weights' arm added the pose term. Both runs ended at 20,000. A
`--resume` takes loss weights, rates and schedule from the command, so it names them again:

    python -m cartoon.twingan.train --resume-from EXPORT_16000 --run-dir runs/twingan-final-pose \\
      --freeze-norm-statistics --steps 20000 --lr-decay-from 15000 --landmark-weight 50 --landmark-measure pose --threads 1
    python -m cartoon.twingan.train --resume --run-dir runs/twingan-final-pose \\
      --steps 20000 --lr-decay-from 15000 --landmark-weight 50 --landmark-measure pose --threads 1

Elsewhere, export, score, go on:

    python -m cartoon.twingan.train --photos A/ --anime B/ --run-dir runs/x   # any two folders
    torchrun --nproc_per_node 2 -m cartoon.twingan.train --run-dir runs/x    # several processes
    python -m cartoon.twingan.train --run-dir runs/x --export FOLDER   # EMA generator and training state
    python -m cartoon.twingan.evaluate --run-dir runs/x --against weights/twingan
    python -m cartoon.twingan.train --resume-from FOLDER --run-dir runs/more --steps 3000
    python -m cartoon.twingan.train --recalibrate FOLDER   # re-estimate a saved model's batch-norm statistics

A `--resume` keeps the checkpoint's data folders, batch size, model and critic sizes, colour condition
and how the run began: a fine-tune's average (`--init-from`) needs no warm-up, frozen statistics stay
frozen. `--freeze-norm-statistics` on a `--resume` freezes them from there on, both models taking the
statistics an export of the checkpoint would write. `--resume-from` takes every argument the export
recorded unless a flag here names it. A run that recorded a switch since removed is refused, and so is
`--init-from` a model with other U-Net skips than the default (only the removed `--skip-resolutions`
made one). `--minutes` bounds the training time of all a run's sessions together. Export writes the
moving average with batch-norm statistics estimated over `--norm-batches` training passes of its own
weights, or as trained if the run froze them.

To compare design switches at a small size, each trained and scored alike, use
`python -m cartoon.twingan.ablate`. The flags are in `cartoon/twingan/options.py`, one training step
in `step.py`, the losses in `losses.py`, the data in `data.py`; what each switch measured is in
docs/twingan-experiments.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from cartoon.data import forever
from cartoon.training import DecayingRates, Distributed, Run, StopRequest, evaluating, memory_format, seed_everything, set_threads
from cartoon.twingan import options
from cartoon.twingan.checkpoint import (
    adopt_generator_config,
    build_models,
    checkpoint_extras,
    estimate_norm_statistics,
    export,
    exported_state,
    recalibrate,
    refuse_lost_trainer_switches,
    refuse_recorded_switches,
    with_domain_skips,
    with_own_statistics,
)
from cartoon.twingan.colour import HAIR_COLOURS, keep_index
from cartoon.twingan.data import anime_batch, anime_tag_confidence, face_dataset, with_training_data
from cartoon.twingan.model import ANIME, HUMAN, TwinGAN
from cartoon.twingan.step import TrainingStep, freeze_batch_norms

GRID_NORM_BATCHES = 25  # batch-norm statistics for a sample grid: enough for a picture, cheap beside 250 steps


def train(args):
    set_threads(args.threads)
    seed_everything(args.seed)
    dist = Distributed(args.device)
    run = Run(args.run, dist.main)
    device = dist.device

    # A resumed run keeps how it began: a fine-tune skips the EMA warm-up, frozen statistics stay frozen
    # (and --freeze-norm-statistics freezes them from a resume on). An export's training state resumes as
    # the checkpoint it was written from would.
    payload = (run.read_checkpoint(device) if args.resume and run.checkpoint_path.is_file()
               else exported_state(args.resume_from) if args.resume_from else None)
    resuming = payload is not None
    freezing_now = False
    if resuming:
        refuse_recorded_switches(payload)
        if args.domain_skips and not payload["config"].get("domain_skips"):
            payload = with_domain_skips(payload)  # added at the identity: the run goes on from the model it saved
        init_from, frozen_statistics = payload.get("init_from"), payload.get("frozen_statistics", False)
        freezing_now = args.freeze_norm_statistics and not frozen_statistics
        frozen_statistics |= freezing_now
        adopt_generator_config(args, payload["config"])
        # older checkpoints: the flags say the critics' widths, and they had one scale
        vars(args).update({"critic_scales": 1, **payload.get("critic_config", {})})
        args = with_training_data(args, payload.get("training_data"))
    else:
        init_from, frozen_statistics = args.init_from, args.freeze_norm_statistics
        args = with_training_data(args)
        if init_from:  # sized and built as the saved model, plus the views if asked for (at the identity)
            saved = json.loads((Path(init_from) / "config.json").read_text())
            adopt_generator_config(args, {**saved, "domain_skips": saved.get("domain_skips") or args.domain_skips})
            # other skips than the default came from the removed flag: the run would record them and could not resume
            refuse_lost_trainer_switches({"skip_resolutions": args.skip_resolutions}, f"{init_from} was trained with")
    # the arguments the checkpoint records say how the run began too, so an export's training.json does
    args.init_from, args.freeze_norm_statistics = init_from, frozen_statistics
    fmt = memory_format(args)
    generator, critics = build_models(args, device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(critics.parameters(), lr=args.critic_lr or args.lr, betas=(0.5, 0.99))
    if init_from and not resuming:
        generator.load_state_dict({**generator.state_dict(), **TwinGAN.from_pretrained(init_from).state_dict()})
        if dist.main:
            print(f"fine-tuning {init_from} with new critics")
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    step = 0
    if resuming:
        # the models and optimisers the trainer has; anything else a checkpoint holds (the removed contrastive
        # term's "nce" heads) is left unread
        step = Run.restore(payload, generator=generator, ema=ema, critics=critics, opt_g=opt_g, opt_d=opt_d)
        if frozen_statistics and not freezing_now:
            # Frozen, both models hold the same statistics, and an export keeps the average's in full precision.
            for frozen, kept in zip(generator.buffers(), ema.buffers()):
                frozen.copy_(kept)
        if dist.main:
            print(f"resumed {args.resume_from or run.checkpoint_path} at step {step}")
    if freezing_now:
        # Frozen from this resume on, with the critics kept: both models take the statistics export would
        # give the average, so the average goes on from the model an export of this checkpoint ships
        # (estimated in the memory order export reads it in: channels-last convolutions round differently).
        for frozen, estimated in zip(generator.buffers(), with_own_statistics(ema.to(memory_format=torch.contiguous_format), args).buffers()):
            frozen.copy_(estimated)
        ema.to(memory_format=fmt)
        if dist.main:
            print(f"froze the batch-norm statistics at step {step}" +
                  (f", estimated for the average over {args.norm_batches} batches" if args.norm_batches else ""))
    if frozen_statistics:
        freeze_batch_norms(generator)
    if step:
        # A new shuffle per saved state taken up: short sessions would otherwise replay the same first batches.
        seed_everything(args.seed + step)
    training_step = TrainingStep(args, dist, generator, ema, critics, opt_g, opt_d, bool(init_from), fmt)
    photos = face_dataset(args.photos, args.resolution)
    anime = face_dataset(args.anime, args.resolution, anime_tag_confidence(args))
    photo_batches = forever(dist.loader(photos, args.batch_size, args.workers, args.seed + step))
    anime_batches = forever(dist.loader(anime, args.batch_size, args.workers, args.seed + step + 1))

    def spread(faces):  # images only: a tagged portrait's tags are left out
        items = (faces[i] for i in range(0, len(faces), max(1, len(faces) // 8)))
        return torch.stack([item[0] if isinstance(item, tuple) else item for item in items][:8]).to(device)

    # The same faces in every grid of the run, across resumes (spread over both photo folders).
    fixed_photos, fixed_anime = spread(photos), spread(anime)
    if dist.main:
        print(f"{len(photos)} photos, {len(anime)} anime images, {sum(p.numel() for p in generator.parameters()) / 1e6:.1f}M generator parameters")

    # --minutes bounds the training time of all the run's sessions together, so a killed run resumed goes on
    # with what is left of it; the checkpoint keeps the seconds spent
    trained_seconds = float(payload.get("trained_seconds", 0.0)) if resuming else 0.0
    session_start = time.time()

    def out_of_time() -> bool:
        return bool(args.minutes) and trained_seconds + time.time() - session_start >= args.minutes * 60

    # a session with any budget left takes at least one step, and so checkpoints what it spent
    started, last_step, spent = time.time(), step, bool(args.minutes) and trained_seconds >= args.minutes * 60
    # both optimisers at the rate each was built with (generator --lr, critics --critic-lr), decayed alike
    rates = DecayingRates([opt_g, opt_d], args.lr_decay_from, args.steps)
    with StopRequest(dist) as stop_requested:
        stopped = False
        while step < args.steps and not (spent or stopped):
            lr = args.lr * rates(step)
            human = next(photo_batches).to(device, non_blocking=True).contiguous(memory_format=fmt)
            drawn, drawn_colours = anime_batch(next(anime_batches), device)
            losses = training_step(human, drawn.contiguous(memory_format=fmt), drawn_colours, step)
            step += 1
            spent, stopped = dist.any(out_of_time()), stop_requested()  # every rank by the same clock
            stopping = step == args.steps or spent or stopped

            if step % args.log_every == 0 or stopping:
                elapsed = time.time() - started
                rate = (step - last_step) / max(elapsed, 1e-9)
                started, last_step = time.time(), step
                values = {name: dist.mean(torch.as_tensor(float(v.detach()))) for name, v in losses.items()}
                run.log(step, it_per_s=rate, lr=lr, **values)
                if dist.main:
                    print(f"step {step}/{args.steps}  {rate:.3f} it/s  " + "  ".join(f"{k} {float(v):.3f}" for k, v in values.items()), flush=True)
            # not on a signal's stop: one who stops a run wants it stopped, not grids first
            if step % args.sample_every == 0 or step == args.steps or spent:
                # Drawn as export would write the average: with statistics of its own weights (fewer
                # batches than export's, enough for a grid), not the copied running estimates.
                sampler = ema
                if args.norm_batches and not frozen_statistics:
                    sampler = estimate_norm_statistics(copy.deepcopy(ema), photo_batches, anime_batches,
                                                       min(args.norm_batches, GRID_NORM_BATCHES))
                with evaluating(sampler):
                    to_anime = sampler(fixed_photos, ANIME)
                    to_human = sampler(fixed_anime, HUMAN)
                    grid = [fixed_photos, to_anime, sampler(to_anime, HUMAN), fixed_anime, to_human, sampler(to_human, ANIME)]
                    if training_step.judge is not None:  # and the photos asked for hair colours in turn, their eyes kept
                        hair = torch.arange(len(fixed_photos), device=device) % len(HAIR_COLOURS)
                        grid.append(sampler(fixed_photos, ANIME, colours=(hair, torch.full_like(hair, keep_index("eyes")))))
                    grid = torch.cat(grid)
                run.save_grid(step, grid, rows=len(fixed_photos))
            if step % args.save_every == 0 or stopping:
                run.save_checkpoint(step, generator=generator, ema=ema, critics=critics, opt_g=opt_g, opt_d=opt_d,
                                    trained_seconds=trained_seconds + time.time() - session_start, **checkpoint_extras(args))
        if dist.main and spent and step < args.steps:
            print(f"stopped at step {step}: --minutes {args.minutes:g} of training reached")
        dist.close()


def build_parser() -> argparse.ArgumentParser:
    return options.build_parser(__doc__)


def parse_args(argv=None) -> argparse.Namespace:
    return options.parse_args(argv, __doc__)


def main(argv=None):
    args = parse_args(argv)
    if args.export:
        export(args)
    elif args.recalibrate:
        recalibrate(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
