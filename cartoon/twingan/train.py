"""Train TwinGAN on two folders of faces, human photos and anime portraits, and export it for the app.

From scratch on the project's data (the train splits of the selfie2anime photos with UTKFace, and of
the selfie2anime anime portraits), as the step-9,650 weights were trained, into runs/twingan:

    python -m cartoon.twingan.train --threads 2 --steps 4850
    python -m cartoon.twingan.train --resume --diffaugment none --steps 8050 --lr-decay-from 6250
    python -m cartoon.twingan.train --resume --diffaugment none --steps 9650 --lr 1e-4 --lr-decay-from 8050 --content-weight 0.5

    python -m cartoon.twingan.train --photos A/ --anime B/ --run-dir runs/x   # any two folders
    torchrun --nproc_per_node 2 -m cartoon.twingan.train --run-dir runs/x    # several processes

Fine-tune a saved model with new critics, as the shipped weights were made from the step-9,650 ones
(weights/twingan/README.md):

    python -m cartoon.twingan.train --init-from weights/twingan --run-dir runs/tune \\
      --critic-warmup 300 --freeze-norm-statistics --feature-critic-weight 1 \\
      --likeness-weight 5 --anime-likeness-weight 5 --content-weight 0.5 --diffaugment none \\
      --lr 4e-5 --critic-lr 1e-4 --steps 2100 --lr-decay-from 300 --threads 2

Export, score, and go on elsewhere:

    python -m cartoon.twingan.train --run-dir runs/tune --export FOLDER   # EMA generator and training state
    python -m cartoon.twingan.evaluate --run-dir runs/tune --against weights/twingan
    python -m cartoon.twingan.train --resume-from FOLDER --run-dir runs/more --steps 3000
    python -m cartoon.twingan.train --recalibrate FOLDER   # re-estimate a saved model's batch-norm statistics

A `--resume` takes this command's flags (loss weights, rates, schedule) and the checkpoint's data
folders, batch size, model and critic sizes, feature critics (unless `--feature-critic-weight` says
otherwise) and how the run began: a fine-tune's average needs no warm-up, frozen statistics stay
frozen. `--freeze-norm-statistics` on a `--resume` freezes them from there on, the critics kept, both
models taking the statistics an export of the checkpoint would write. `--resume-from` takes every
argument the export recorded unless a flag here names it. Export writes the moving average with
batch-norm statistics estimated over `--norm-batches` training passes of its own weights, or as
trained if the run froze them.

Redesign switches, each off by default (issue 44): `--norm adalin` (U-GAT-IT's AdaLIN as the domain
switch), `--attention cam` (its class activation attention, `--cam-weight`), `--critic-scales 2` (a
second critic per domain at half size), `--colour-condition` (hair and eye colour asked of the anime
side, `--colour-weight`), and `--width`/`--max-width` for capacity. `--minutes` bounds a
run's training time across its sessions. Small-size arms are trained and scored in one command by
`python -m cartoon.twingan.ablate`.

The losses are in `cartoon/twingan/losses.py`, the data pipeline in `cartoon/twingan/data.py`; every
arm tried and what it measured is in `docs/twingan-experiments.md`.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from torch import nn

from cartoon.training import (
    Distributed,
    Run,
    add_common_args,
    autocast,
    evaluating,
    forever,
    linear_decay,
    memory_format,
    seed_everything,
    set_learning_rate,
    set_threads,
    update_ema,
)
from cartoon.training_state import parse_resumable
from cartoon.twingan.checkpoint import (
    adopt_generator_config,
    build_models,
    checkpoint_extras,
    estimate_norm_statistics,
    export,
    exported_state,
    recalibrate,
    with_own_statistics,
)
from cartoon.twingan.colour import HAIR_COLOURS, colour_loss, keep_index, load_judge, random_colours
from cartoon.twingan.data import anime_batch, anime_tag_confidence, face_dataset, with_training_data
from cartoon.twingan.losses import (
    CYCLE_WEIGHT,
    DOMAINS,
    RECONSTRUCTION_WEIGHT,
    SourceTerms,
    build_feature_critics,
    cam_loss,
    critic_loss,
    diff_augment,
    feature_activations,
    feature_critic_loss,
    pixel_losses,
    translate_both_ways,
)
from cartoon.twingan.model import ANIME, HUMAN, NORMS, TwinGAN
from cartoon.vgg import VGG16Features

GRID_NORM_BATCHES = 25  # batch-norm statistics for a sample grid: enough for a picture, cheap beside 250 steps


def freeze_batch_norms(generator: TwinGAN) -> None:
    """Batch norms normalise by their running statistics in training too, as at inference, and keep them."""
    for module in generator.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()


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
        if init_from:
            adopt_generator_config(args, json.loads((Path(init_from) / "config.json").read_text()))
    # the arguments the checkpoint records say how the run began too, so an export's training.json does
    args.init_from, args.freeze_norm_statistics = init_from, frozen_statistics
    if args.feature_critic_weight is None:  # a resumed run keeps its feature critics unless told otherwise
        args.feature_critic_weight = payload.get("feature_critic_weight", 0.0) if resuming else 0.0
    fmt = memory_format(args)
    generator, critics = build_models(args, device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.99))
    critic_lr = args.critic_lr or args.lr
    opt_d = torch.optim.Adam(critics.parameters(), lr=critic_lr, betas=(0.5, 0.99))
    if init_from and not resuming:
        generator.load_state_dict(TwinGAN.from_pretrained(init_from).state_dict())
        if dist.main:
            print(f"fine-tuning {init_from} with new critics")
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    step = 0
    if resuming:
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
    g = dist.wrap(generator)
    # One frozen VGG16 serves the feature critics and every term that holds a translation to its source.
    vgg = (VGG16Features("relu4_3").to(device, memory_format=fmt)
           if args.feature_critic_weight or SourceTerms.needs_vgg(args) else None)
    source_terms = SourceTerms(args, vgg, device, fmt)
    feature_critics = opt_f = None
    if args.feature_critic_weight:
        feature_critics = build_feature_critics(vgg).to(device, memory_format=fmt)
        opt_f = torch.optim.Adam(feature_critics.parameters(), lr=critic_lr, betas=(0.5, 0.99))
        if resuming:  # a run that adds the critics later starts them fresh
            Run.restore(payload, feature_critics=feature_critics, opt_f=opt_f)
    wrapped_critics = [dist.wrap(c) for c in critics]  # synchronised in the critic step
    wrapped_feature_critics = [dist.wrap(c) for c in feature_critics] if feature_critics is not None else None

    # Colour-conditioned, each anime portrait comes with its tags, and the frozen judge that read them holds
    # every photo's anime translation to the colours it was asked for.
    judge = load_judge().to(device) if args.colour_condition else None
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

    augmenting = args.diffaugment != "none"

    def augment(x):
        return diff_augment(x, args.diffaugment) if augmenting else x

    # --minutes bounds the training time of all the run's sessions together, so a killed run resumed goes on
    # with what is left of it; the checkpoint keeps the seconds spent
    trained_seconds = float(payload.get("trained_seconds", 0.0)) if resuming else 0.0
    session_start = time.time()

    def out_of_time() -> bool:
        return bool(args.minutes) and trained_seconds + time.time() - session_start >= args.minutes * 60

    # a session with any budget left takes at least one step, and so checkpoints what it spent
    started, last_step, spent = time.time(), step, bool(args.minutes) and trained_seconds >= args.minutes * 60
    while step < args.steps and not spent:
        schedule = linear_decay(step, args.lr_decay_from, args.steps)
        lr = args.lr * schedule
        set_learning_rate(opt_g, lr)
        set_learning_rate(opt_d, critic_lr * schedule)
        if feature_critics is not None:
            set_learning_rate(opt_f, critic_lr * schedule)
        human = next(photo_batches).to(device, non_blocking=True).contiguous(memory_format=fmt)
        drawn, drawn_colours = anime_batch(next(anime_batches), device)
        drawn = drawn.contiguous(memory_format=fmt)
        requested = random_colours(len(human), device) if judge is not None else None
        reals = {HUMAN: human, ANIME: drawn}
        # During the critic warm-up the generator stands still: no graph through it, no update.
        training_generator = step >= args.critic_warmup

        with torch.set_grad_enabled(training_generator), autocast(args, device):
            out = translate_both_ways(g, human, drawn, cam=generator.attention is not None, requested=requested, drawn_colours=drawn_colours)
        fakes = {d: out.into(d) for d in DOMAINS}

        # What the feature critics see of the translations (only those: reconstructions are held to their
        # inputs by L1). Unaugmented, the generator's step would see the same activations, so this one VGG
        # pass, with the generator's graph, serves both steps.
        criticised = {}
        if feature_critics is not None:
            with torch.set_grad_enabled(training_generator and not augmenting), autocast(args, device):
                criticised = {d: feature_activations(vgg, out.translated_into(d), augment, args.vgg_size) for d in DOMAINS}

        # Critics: hinge loss, each domain's real images against everything generated into it.
        critics.requires_grad_(True)
        with autocast(args, device):
            loss_d = sum(critic_loss(wrapped_critics[d], reals[d], fakes[d].detach(), augment) for d in DOMAINS)
            loss_d_feature, real_activations = torch.zeros(()), {}
            if feature_critics is not None:
                feature_critics.requires_grad_(True)
                with torch.no_grad():
                    real_activations = {d: feature_activations(vgg, reals[d], augment, args.vgg_size) for d in DOMAINS}
                loss_d_feature = sum(feature_critic_loss(wrapped_feature_critics[d], real_activations[d], criticised[d]) for d in DOMAINS)
        opt_d.zero_grad(set_to_none=True)
        if feature_critics is not None:
            opt_f.zero_grad(set_to_none=True)
        (loss_d + loss_d_feature).backward()
        opt_d.step()
        if feature_critics is not None:
            opt_f.step()

        # Generator: fool each domain's critics, reconstruct each domain, close both cycles. The critics are
        # frozen here, so their unwrapped modules suffice (nothing of theirs needs synchronising).
        critics.requires_grad_(False)
        if feature_critics is not None:
            feature_critics.requires_grad_(False)
        with torch.set_grad_enabled(training_generator), autocast(args, device):
            loss_gan = -sum(critics[d](augment(fakes[d])).mean() for d in DOMAINS)
            # Augmented, the generator is judged on a fresh draw of the augmentations, as the pixel critics judge it.
            activations = ({d: feature_activations(vgg, out.translated_into(d), augment, args.vgg_size) for d in criticised}
                           if augmenting else criticised)
            loss_feature = (-sum(scores.mean() for d in activations for scores in feature_critics[d](activations[d]))
                            if activations else torch.zeros(()))
            loss_recon, loss_cycle = pixel_losses(out, human, drawn)
            loss_cam = cam_loss(out) if out.cam_logits is not None else torch.zeros(())
            loss_colour = colour_loss(judge, out.human_to_anime, requested) if judge is not None else torch.zeros(())
            # Unaugmented, the feature critics' activations are the source terms' own: no second VGG pass.
            held = source_terms(out, reals, (activations, real_activations) if feature_critics is not None and not augmenting else None)
            loss_g = (loss_gan + args.feature_critic_weight * loss_feature + RECONSTRUCTION_WEIGHT * loss_recon
                      + CYCLE_WEIGHT * loss_cycle + args.cam_weight * loss_cam + args.colour_weight * loss_colour + source_terms.weighted(held))
        if training_generator:
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            # Warm-up: early on the average follows the generator closely instead of the random
            # init. A fine-tuned model's average starts at trained weights and needs none.
            decay = args.ema_decay if init_from else min(args.ema_decay, (1 + step) / (10 + step))
            update_ema(ema, generator, decay)
        step += 1
        spent = out_of_time()
        stopping = step == args.steps or spent

        if step % args.log_every == 0 or stopping:
            elapsed = time.time() - started
            rate = (step - last_step) / max(elapsed, 1e-9)
            started, last_step = time.time(), step
            logged = dict(loss_d=loss_d, loss_d_feature=loss_d_feature, loss_gan=loss_gan, loss_feature=loss_feature,
                          loss_recon=loss_recon, loss_cycle=loss_cycle, loss_cam=loss_cam, loss_colour=loss_colour, **{f"loss_{name}": loss for name, loss in held.items()})
            values = {name: dist.mean(torch.as_tensor(float(v.detach()))) for name, v in logged.items()}
            run.log(step, it_per_s=rate, lr=lr, **values)
            if dist.main:
                print(f"step {step}/{args.steps}  {rate:.3f} it/s  " + "  ".join(f"{k} {float(v):.3f}" for k, v in values.items()), flush=True)
        if step % args.sample_every == 0 or stopping:
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
                if judge is not None:  # and the photos asked for hair colours in turn, their eyes kept
                    hair = torch.arange(len(fixed_photos), device=device) % len(HAIR_COLOURS)
                    grid.append(sampler(fixed_photos, ANIME, colours=(hair, torch.full_like(hair, keep_index("eyes")))))
                grid = torch.cat(grid)
            run.save_grid(step, grid, rows=len(fixed_photos))
        if step % args.save_every == 0 or stopping:
            feature_state = (dict(feature_critics=feature_critics, opt_f=opt_f, feature_critic_weight=args.feature_critic_weight)
                             if feature_critics is not None else {})
            run.save_checkpoint(step, generator=generator, ema=ema, critics=critics, opt_g=opt_g, opt_d=opt_d, **feature_state,
                                trained_seconds=trained_seconds + time.time() - session_start, **checkpoint_extras(args))
    if dist.main and step < args.steps:
        print(f"stopped at step {step}: --minutes {args.minutes:g} of training reached")
    dist.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "twingan")
    parser.add_argument("--photos", nargs="+", help="human photo folders (default: a resumed or exported run's own, "
                        "else the selfie2anime photos and UTKFace)")
    parser.add_argument("--anime", nargs="+", help="anime portrait folders (default: a resumed or exported run's own, "
                        "else the selfie2anime drawings)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--width", type=int, default=8, help="channels at full resolution, doubling per halving (8 and 128: the shipped model)")
    parser.add_argument("--max-width", type=int, default=128)
    parser.add_argument("--norm", choices=sorted(NORMS), default="batch", help="the generator's domain switch: per-domain "
                        "batch norm (the shipped model) or U-GAT-IT's AdaLIN (per-domain mix of instance and layer norm)")
    parser.add_argument("--attention", choices=["cam"], help="U-GAT-IT's class activation attention on the code, "
                        "per output domain (default: none, as shipped)")
    parser.add_argument("--cam-weight", type=float, default=1000.0, help="with --attention cam: weight of its "
                        "classifier's loss (U-GAT-IT's 1000)")
    parser.add_argument("--colour-condition", action="store_true", help="condition the anime side on hair and eye "
                        "colour (cartoon.twingan.colour): portraits are reconstructed with their tags, photos translated "
                        "with random requests, and the colour classifier holds the translations to them")
    parser.add_argument("--colour-weight", type=float, default=1.0, help="with --colour-condition: weight of the "
                        "classifier's cross-entropy on the requested hair and eye colours of each photo's translation")
    parser.add_argument("--tag-confidence", type=float, default=0.5, help="with --colour-condition: an anime tag the "
                        "classifier read with less confidence is 'keep', not a colour")
    parser.add_argument("--critic-width", type=int, help="the critics' channels at full resolution (default: --width)")
    parser.add_argument("--critic-max-width", type=int, help="(default: --max-width)")
    parser.add_argument("--critic-scales", type=int, default=1, help="pixel critics per domain, each at half the "
                        "previous one's image size (pix2pixHD's multi-scale critic; 1: one at full size)")
    parser.add_argument("--minutes", type=float, help="stop when the run's training (all its sessions together) has "
                        "taken this many minutes, or at --steps if sooner; the checkpoint says the step reached")
    parser.add_argument("--init-from", metavar="FOLDER", help="fine-tune a saved model (config.json + model.safetensors, "
                        "as in weights/twingan): the generator and its average start as that model, sized by its config, "
                        "with new critics and optimisers")
    parser.add_argument("--critic-warmup", type=int, default=0, metavar="STEPS", help="for the run's first STEPS steps "
                        "train only the critics, so new critics learn the generator's output before it sees their gradient")
    parser.add_argument("--freeze-norm-statistics", action="store_true", help="batch norms normalise by their running "
                        "statistics in training as at inference, and keep them, so the critics judge exactly what the "
                        "model will make (with --init-from: the saved model's statistics; on a --resume: from there on, "
                        "the critics kept, with the statistics export would give the run's average); export writes them")
    parser.add_argument("--content-weight", type=float, default=0.0, help="VGG16 relu4_3 L1 between each photo and its anime translation (0: off)")
    parser.add_argument("--cycle-content-weight", type=float, default=0.0, help="VGG16 relu4_3 L1 between each photo "
                        "and its round trip human → anime → human, so the way back keeps what the photo's features say "
                        "of the face (gender, age) and not only its pixels (0: off)")
    parser.add_argument("--likeness-weight", type=float, default=0.0, help="contrastive loss: each photo's anime translation "
                        "should be, of that photo and ~1,000 others, most like its own on pooled VGG16 relu4_3 (0: off)")
    parser.add_argument("--anime-likeness-weight", type=float, default=0.0, help="the same for the anime → human "
                        "translations: each must pick out its own anime portrait (0: off)")
    parser.add_argument("--landmark-weight", type=float, default=0.0, help="each photo's anime translation keeps the "
                        "photo's 5 RetinaFace landmarks (cartoon.faces.LandmarkLoss, in eye distances; needs --resolution "
                        "64 or more; 0: off)")
    parser.add_argument("--landmark-measure", choices=["points", "pose"], default="points", help="what the landmark "
                        "term keeps: the 5 points where they are, or the head's pose (eye, nose and mouth centres, eye "
                        "and mouth lines), which leaves anime eye spacing and mouth width free")
    parser.add_argument("--feature-critic-weight", type=float, help="a second critic per domain on frozen VGG16 "
                        "activations (relu2_2, relu3_3, relu4_3) judges the translations; the weight of its GAN loss, "
                        "a sum over the three layers' heads (0: off; default: a resumed run's, else off)")
    parser.add_argument("--vgg-size", type=int, default=64, help="side at which the feature critics and the VGG16 terms see images")
    parser.add_argument("--critic-lr", type=float, help="the critics' learning rate (default: --lr, the generator's)")
    parser.add_argument("--lr-decay-from", type=int, metavar="STEP", help="from STEP the learning rate falls linearly to 0 at --steps (default: constant)")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--diffaugment", default="color,translation,cutout", help="policy, or 'none'")
    parser.add_argument("--export", metavar="FOLDER", help="only export RUN's EMA generator and its training state to FOLDER and exit")
    parser.add_argument("--recalibrate", metavar="FOLDER", help="only re-estimate the batch-norm statistics of the "
                        "saved model in FOLDER (in place) and exit")
    parser.add_argument("--norm-batches", type=int, default=400, help="training batches (of --photos and --anime, and "
                        "--batch-size: a run's own unless named) whose mean batch-norm statistics --export and "
                        "--recalibrate write, and --freeze-norm-statistics on a --resume freezes (0: keep the running estimates)")
    parser.set_defaults(batch_size=None, lr=2e-4, log_every=10, sample_every=250, save_every=100)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return parse_resumable(build_parser(), argv)


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
