"""Train TwinGAN on two folders of faces: human photos and anime portraits.

    python -m cartoon.twingan.train --threads 1                      # project data, runs/twingan
    python -m cartoon.twingan.train --resume --steps 20000           # continue the same run
    python -m cartoon.twingan.train --photos A/ --anime B/           # any two folders
    python -m cartoon.twingan.train --resume --steps 8000 --lr-decay-from 6000   # finish: lr → 0
    torchrun --nproc_per_node 2 -m cartoon.twingan.train --run-dir runs/x   # several processes
    python -m cartoon.twingan.train --export weights/twingan         # EMA generator → save_pretrained, and the training state
    python -m cartoon.twingan.train --resume-from weights/twingan --run-dir runs/t --steps 12000   # go on elsewhere
    python -m cartoon.twingan.train --recalibrate weights/twingan    # a saved model's batch-norm statistics
    python -m cartoon.twingan.train --widen-from runs/a --run-dir runs/b --width 16 --max-width 256 \
        --critic-width 8 --critic-max-width 128                      # go on with twice the channels
    python -m cartoon.twingan.train --init-from weights/twingan --critic-warmup 300 --run-dir runs/c
                                                                     # fine-tune a saved model, new critics
    python -m cartoon.twingan.train --norm layer-instance --run-dir runs/d   # per-image norms: trained as it infers
    python -m cartoon.twingan.train --critic-patches 16 --run-dir runs/e    # critics also score 24-pixel patches
    python -m cartoon.twingan.train --norm demodulated --run-dir runs/f      # per-domain styles, no statistics
    python -m cartoon.twingan.train --blurred-fakes 2 --run-dir runs/g      # critics learn blurred reals are fake
    python -m cartoon.twingan.train --style-weight 50 --run-dir runs/h      # anime textures: VGG Gram matrices
    python -m cartoon.twingan.train --cycle-weight 1 --anime-cycle-weight 10 --run-dir runs/i
                                              # the anime translation need not carry the photo's texture
    python -m cartoon.twingan.train --cycle-translation-scale 0.1 --run-dir runs/j
                                 # both round trips ask 1 of their translation and 10 of the way back
    python -m cartoon.twingan.train --feature-critic-weight 1 --run-dir runs/k
                                 # a second critic per domain judges translations on frozen VGG16 features
    python -m cartoon.twingan.train --likeness-weight 1 --run-dir runs/l
                                 # each anime translation must stay recognisably its own photo (contrastive)
    python -m cartoon.twingan.train --resume --run-dir runs/l --freeze-norm-statistics --steps 12000
                                 # go on with the statistics frozen as export would write them, critics kept
    python -m cartoon.twingan.train --landmark-weight 10 --run-dir runs/m
                                 # each anime translation keeps its photo's five face landmarks
    python -m cartoon.twingan.train --landmark-weight 100 --landmark-measure pose --run-dir runs/p
                                 # ... or only its head pose, so the eyes and mouth may be redrawn

Losses per step (hinge GAN, one spectral-norm discriminator per domain, DiffAugment on every image
a discriminator sees): human→human and anime→anime reconstruction (L1 + GAN), human→anime GAN with
human→anime→human cycle L1, and the mirror anime→human GAN with anime→human→anime cycle, so the
reverse direction is trained as well. With `--content-weight`, each photo's anime translation also
keeps the photo's VGG16 relu4_3 features (AnimeGAN's content loss), at weight 0.5 in the shipped
weights' last two phases. With `--style-weight`, each batch of anime translations is
also asked for the mean VGG16 Gram matrices (relu1_2, relu2_2, relu3_3) of a batch of real anime
(AnimeGAN's style loss). With `--likeness-weight`, each anime translation's pooled VGG16 relu4_3
features must pick out its own photo among the batch's and ~1,000 earlier photos (`LikenessLoss`,
InfoNCE; `--anime-likeness-weight`: the same for anime → human translations and their
portraits); at weight 5 beside the feature critics, measured as exported, it beat the step-9,650
weights in every KID row and kept UTKFace faces and poses better, but selfies kept less likeness
and more men came back from their anime portrait read as women. With `--feature-critic-weight`, a
second critic per domain scores the translations on frozen VGG16 activations (`FeatureCritic`);
in a fine-tune it took anime → human KID×100 from 17.7 to 12.6 and lost ground on UTKFace.
`--freeze-norm-statistics` on a `--resume` of that likeness arm (its critics kept) took the
bright blot that arm left on some faces out of the model's output, and selfie KID×100 to 11.8
(11.5 with `--cycle-content-weight 5` after it), but a quarter of held-out men came back from the
round trip read as women. The shipped weights are the step-9,650 export fine-tuned with all of it
at once: `--init-from` with `--critic-warmup 300`, `--freeze-norm-statistics`, feature critics and
both likeness terms at 5 (the model card has the command). That beat the export in every held-out
KID row and kept poses and likeness better. Every other switch here (`--widen-from`, `--norm`,
`--skips`, `--recon-weight`, `--critic-patches`, `--blurred-fakes`, `--style-weight`, a
`--cycle-weight` below 10, `--anime-cycle-weight`, `--cycle-translation-scale`) was tried against
the step-9,650 weights or the run that made them and lost in at least one held-out row; the experiment
log, `docs/twingan-experiments.md`, has what each one measured.
Export writes the moving average with batch-norm statistics estimated for its own weights, the
mean over `--norm-batches` training passes (`estimate_norm_statistics`), instead of the running
estimates copied from the raw generator's last few batches. The checkpoint records the run's
arguments, its folders and batch size among them: `--resume`, `--export` and `evaluate --run-dir`
draw on them (the first two unless their flags name others), and the training state `--export`
writes carries them to `--resume-from`.
With the project's own data folders only their train split is used (`cartoon.data.split`).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader
from torchvision import transforms
from torchvision.transforms.functional import gaussian_blur

from cartoon import data
from cartoon.training import (
    Distributed,
    ImageFolder,
    Run,
    add_common_args,
    autocast,
    evaluating,
    forever,
    hinge_critic_loss,
    linear_decay,
    measure_batchnorm_statistics,
    memory_format,
    seed_everything,
    set_learning_rate,
    set_threads,
    update_ema,
)
from cartoon.training_state import export_training_state, parse_resumable, read_training_state
from cartoon.twingan.model import ANIME, HUMAN, Discriminator, FeatureCritic, TwinGAN, widen
from cartoon.vgg import ContentLoss, LikenessLoss, StyleLoss, VGG16Features


def training_files(folder) -> list:
    """The train split of a project data folder; every image of any other folder."""
    folder = Path(folder).resolve()
    for known in data.HOLDOUT:
        if known.resolve() == folder:
            return data.split(known)[0]
    return data.images_in(folder)


def face_dataset(folders, resolution: int):
    transform = transforms.Compose([
        transforms.Resize(resolution, antialias=True),
        transforms.CenterCrop(resolution),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * 3, [0.5] * 3),
    ])
    return ConcatDataset([ImageFolder(files=training_files(f), transform=transform) for f in folders])


def diff_augment(images: torch.Tensor, policy: str) -> torch.Tensor:
    """Differentiable augmentation (Zhao et al. 2020), applied alike to real and generated images."""
    n = images.shape[0]
    if "color" in policy:
        images = images + (torch.rand(n, 1, 1, 1, device=images.device) - 0.5)
        mean = images.mean(1, keepdim=True)
        images = (images - mean) * (torch.rand(n, 1, 1, 1, device=images.device) * 2) + mean
        mean = images.mean((1, 2, 3), keepdim=True)
        images = (images - mean) * (torch.rand(n, 1, 1, 1, device=images.device) + 0.5) + mean
    if "translation" in policy:
        # shift by up to 1/8 of the side, zeros coming in (grid units span 2 per side)
        shift = (torch.rand(n, 2, device=images.device) - 0.5) * 0.5
        theta = torch.zeros(n, 2, 3, device=images.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)
    if "cutout" in policy:
        side = images.shape[-1]
        half = side // 4  # a square of half the side, as in DiffAugment
        centre = torch.randint(0, side, (n, 2, 1, 1), device=images.device)
        coords = torch.arange(side, device=images.device)
        inside_y = (coords.view(1, side, 1) - centre[:, 0]).abs() < half
        inside_x = (coords.view(1, 1, side) - centre[:, 1]).abs() < half
        images = images * (~(inside_y & inside_x)).unsqueeze(1).to(images.dtype)
    return images


def at_side(images: torch.Tensor, side: int) -> torch.Tensor:
    """VGG losses compare at `side`²: VGG is the costliest part of a CPU step. At 64² two different
    people are still twice as far apart as a photo and its anime translation, and Gram matrices still
    tell the step-9,650 weights' translations' textures from a drawing's as well as at 128²."""
    if images.shape[-1] == side:
        return images
    # float: antialiased resizing has no bfloat16 kernel on the CPU
    return F.interpolate(images.float(), size=side, mode="bilinear", antialias=True, align_corners=False)


GRID_NORM_BATCHES = 25  # batch-norm statistics for a sample grid: enough for a picture, cheap beside 250 steps


class Translations(NamedTuple):
    human_to_human: torch.Tensor
    human_to_anime: torch.Tensor
    anime_to_human: torch.Tensor
    anime_to_anime: torch.Tensor
    cycle_human: torch.Tensor  # human → anime → human
    cycle_anime: torch.Tensor  # anime → human → anime


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """`x` unchanged going forward; the gradient flowing back through it multiplied by `scale`."""
    return x if scale == 1 else torch.lerp(x.detach(), x, scale)


def translate_both_ways(g, human: torch.Tensor, drawn: torch.Tensor, cycle_translation_scale: float = 1.0) -> Translations:
    """A training step's generator passes: each encoding decoded into both domains, then each
    translation back (in this order, which is the order batch norm sees the batches in).

    What the round trips' losses ask of the first pass, the translation, is scaled by
    `cycle_translation_scale`; the second pass, which rebuilds the input, gets the full weight.
    """
    human_to_human, human_to_anime = g(human, [HUMAN, ANIME])
    anime_to_human, anime_to_anime = g(drawn, [HUMAN, ANIME])
    return Translations(human_to_human, human_to_anime, anime_to_human, anime_to_anime,
                        g(scale_gradient(human_to_anime, cycle_translation_scale), HUMAN),
                        g(scale_gradient(anime_to_human, cycle_translation_scale), ANIME))


def estimate_norm_statistics(model: TwinGAN, photo_batches, anime_batches, batches: int) -> TwinGAN:
    """Set every batch norm's running statistics to their mean over `batches` training passes of
    `model` itself, and return it in eval mode.

    In training each running estimate follows the raw generator's last few batches (momentum 0.1)
    and the moving average copies it, so the average is shipped with statistics of other weights,
    and noisy ones: every checkpoint translates a little differently for that alone.
    """
    device = next(model.parameters()).device
    return measure_batchnorm_statistics(
        model, lambda: translate_both_ways(model, next(photo_batches).to(device), next(anime_batches).to(device)), batches)


def build_models(args, device="cpu"):
    """The generator and the two critics, in the run's memory order."""
    generator = TwinGAN(**model_config(args))
    critic_width, critic_max_width = args.critic_width or args.width, args.critic_max_width or args.max_width
    critics = torch.nn.ModuleList(Discriminator(args.resolution, critic_width, critic_max_width, args.critic_patches) for _ in range(2))
    return generator.to(device, memory_format=memory_format(args)), critics.to(device, memory_format=memory_format(args))


def build_feature_critics(vgg: VGG16Features) -> nn.ModuleList:
    """A `FeatureCritic` per domain on the FEATURE_LAYERS of `vgg` (their sizes only: its weights may be untrained)."""
    return nn.ModuleList(FeatureCritic(vgg.channels(FEATURE_LAYERS)) for _ in range(2))


def critic_config(args) -> dict:
    return {"critic_width": args.critic_width, "critic_max_width": args.critic_max_width, "critic_patches": args.critic_patches}


def blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation `sigma` pixels, the kernel reaching three deviations out."""
    return gaussian_blur(images, 2 * math.ceil(3 * sigma) + 1, sigma)


def critic_loss(critic, real: torch.Tensor, fake: torch.Tensor, augment, blur_sigma: float | None = None) -> torch.Tensor:
    """Hinge loss of one domain's critic, summed over its heads: the domain's real images against
    everything generated into it, and with `blur_sigma` against the real images blurred too.

    Blurred reals as fakes is CartoonGAN's edge-promoting loss (Chen et al. 2018), with the whole
    image blurred rather than its edges: soft contours and low local contrast then mark a fake. The
    step-9,650 weights' translations are soft at that scale: an unsharp mask of sigma 2 alone took
    their selfie KID×100 from 16.6 to 13.8.
    """
    fakes = [fake]
    if blur_sigma:
        fakes.append(blurred(real, blur_sigma))
    heads = critic(augment(torch.cat([real, *fakes])))
    return sum(hinge_critic_loss(scores[: len(real)], scores[len(real) :]) for scores in heads)


# the VGG16 activations the feature critics score: textures at 32², parts at 16², layout at 8² of a 64² view
FEATURE_LAYERS = ("relu2_2", "relu3_3", "relu4_3")


def feature_activations(vgg: VGG16Features, images: torch.Tensor, augment, side: int) -> list[torch.Tensor]:
    """What the feature critics score: `images` augmented as the pixel critics see them, at the VGG side."""
    return vgg.activations(at_side(augment(images), side), FEATURE_LAYERS)


def feature_critic_loss(critic, real_activations: list[torch.Tensor], fake_activations: list[torch.Tensor]) -> torch.Tensor:
    """Hinge loss of one domain's feature critic, summed over its layers, on the `feature_activations` of real
    images against those of fakes. Nothing flows back through the frozen network: only the heads learn here."""
    activations = [torch.cat([r, f.detach()]) for r, f in zip(real_activations, fake_activations)]
    reals = len(real_activations[0])
    return sum(hinge_critic_loss(scores[:reals], scores[reals:]) for scores in critic(activations))


def checkpoint_generator(payload: dict, key: str = "ema") -> TwinGAN:
    """The generator (`key` "generator") or its moving average ("ema") from a checkpoint payload."""
    model = TwinGAN(**payload["config"])
    model.load_state_dict(payload[key])
    return model


def start_from_narrower(run_dir, generator, ema, critics, opt_d) -> int:
    """Begin a run from another run's checkpoint with the generator (and its average) widened
    twice, keeping that run's critics and their optimiser; returns the step it had reached."""
    payload = Run(run_dir, main=False).read_checkpoint()
    for key, target in (("generator", generator), ("ema", ema)):
        widen(checkpoint_generator(payload, key), target)
    critics.load_state_dict(payload["critics"])
    opt_d.load_state_dict(payload["opt_d"])
    return int(payload["step"])


def adopt_generator_config(args, config: dict) -> None:
    """Size the generator as a saved one is sized (its `config`), whatever the size flags say."""
    args.resolution, args.width, args.max_width = config["resolution"], config["width"], config["max_width"]
    args.skips, args.norm = list(config["skip_resolutions"]), config.get("norm", "batch")


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
        vars(args).update(payload.get("critic_config", {}))  # older checkpoints: the flags say
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
    anime_cycle_weight = args.cycle_weight if args.anime_cycle_weight is None else args.anime_cycle_weight
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
    elif args.widen_from:
        step = start_from_narrower(args.widen_from, generator, ema, critics, opt_d)
        if dist.main:
            print(f"widened the generator of {args.widen_from} at step {step}")
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
        # Batch norms normalise by their running statistics in training too, as at inference.
        for module in generator.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
    if step:
        # A new shuffle per saved state taken up: short sessions would otherwise replay the same first batches.
        seed_everything(args.seed + step)
    g = dist.wrap(generator)
    # One frozen VGG16 serves the feature critics, the content and the likeness loss.
    vgg = (VGG16Features("relu4_3").to(device, memory_format=fmt)
           if args.feature_critic_weight or args.content_weight or args.cycle_content_weight or args.likeness_weight
           or args.anime_likeness_weight else None)
    content = ContentLoss(vgg).to(device) if args.content_weight or args.cycle_content_weight else None
    # Keyed by the translation's domain: anime translations pick out their photos, human ones their portraits.
    likeness = {d: LikenessLoss(vgg).to(device) for d, weight in ((ANIME, args.likeness_weight), (HUMAN, args.anime_likeness_weight)) if weight}
    landmarks = None
    if args.landmark_weight:
        if args.resolution < 64:  # known only now: a resumed or fine-tuned run takes its resolution from its model
            raise SystemExit(f"--landmark-weight needs a resolution of at least 64 (the face detector's), not {args.resolution}")
        from cartoon.faces import LandmarkLoss  # a face detector is loaded only when asked for
        landmarks = LandmarkLoss(measure=args.landmark_measure).to(device, memory_format=fmt)
    feature_critics = opt_f = None
    if args.feature_critic_weight:
        feature_critics = build_feature_critics(vgg).to(device, memory_format=fmt)
        opt_f = torch.optim.Adam(feature_critics.parameters(), lr=critic_lr, betas=(0.5, 0.99))
        if resuming:  # a run that adds the critics later starts them fresh
            Run.restore(payload, feature_critics=feature_critics, opt_f=opt_f)
    style = StyleLoss().to(device, memory_format=fmt) if args.style_weight else None
    wrapped_critics = [dist.wrap(c) for c in critics]  # synchronised in the critic step
    wrapped_feature_critics = [dist.wrap(c) for c in feature_critics] if feature_critics is not None else None

    photos = face_dataset(args.photos, args.resolution)
    anime = face_dataset(args.anime, args.resolution)
    photo_batches = forever(dist.loader(photos, args.batch_size, args.workers, args.seed + step))
    anime_batches = forever(dist.loader(anime, args.batch_size, args.workers, args.seed + step + 1))
    # The same faces in every grid of the run, across resumes (spread over both photo folders).
    fixed_photos, fixed_anime = (torch.stack([d[i] for i in range(0, len(d), max(1, len(d) // 8))][:8]).to(device) for d in (photos, anime))
    if dist.main:
        print(f"{len(photos)} photos, {len(anime)} anime images, {sum(p.numel() for p in generator.parameters()) / 1e6:.1f}M generator parameters")

    augmenting = args.diffaugment != "none"

    def augment(x):
        return diff_augment(x, args.diffaugment) if augmenting else x

    started, last_step = time.time(), step
    while step < args.steps:
        schedule = linear_decay(step, args.lr_decay_from, args.steps)
        lr = args.lr * schedule
        set_learning_rate(opt_g, lr)
        set_learning_rate(opt_d, critic_lr * schedule)
        if feature_critics is not None:
            set_learning_rate(opt_f, critic_lr * schedule)
        human = next(photo_batches).to(device, non_blocking=True).contiguous(memory_format=fmt)
        drawn = next(anime_batches).to(device, non_blocking=True).contiguous(memory_format=fmt)
        # During the critic warm-up the generator stands still: no graph through it, no update.
        training_generator = step >= args.critic_warmup

        # Generator forward: each encoding is decoded into both domains.
        with torch.set_grad_enabled(training_generator), autocast(args, device):
            out = translate_both_ways(g, human, drawn, args.cycle_translation_scale)
        fakes = {HUMAN: torch.cat([out.human_to_human, out.anime_to_human]), ANIME: torch.cat([out.anime_to_anime, out.human_to_anime])}
        reals = {HUMAN: human, ANIME: drawn}
        # The feature critics judge translations only: reconstructions are held to their inputs by L1.
        translations = {HUMAN: out.anime_to_human, ANIME: out.human_to_anime}

        # What the feature critics see of the translations. Unaugmented, the generator's step would see the
        # same activations, so this one VGG pass, with the generator's graph, serves both steps.
        criticised = {}
        if feature_critics is not None:
            with torch.set_grad_enabled(training_generator and not augmenting), autocast(args, device):
                criticised = {d: feature_activations(vgg, translations[d], augment, args.vgg_size) for d in (HUMAN, ANIME)}

        # Critics: hinge loss, each domain's real images against everything generated into it.
        critics.requires_grad_(True)
        with autocast(args, device):
            loss_d = sum(critic_loss(wrapped_critics[d], reals[d], fakes[d].detach(), augment, args.blurred_fakes) for d in (HUMAN, ANIME))
            loss_d_feature, real_activations = torch.zeros(()), {}
            if feature_critics is not None:
                feature_critics.requires_grad_(True)
                with torch.no_grad():
                    real_activations = {d: feature_activations(vgg, reals[d], augment, args.vgg_size) for d in (HUMAN, ANIME)}
                loss_d_feature = sum(feature_critic_loss(wrapped_feature_critics[d], real_activations[d], criticised[d]) for d in (HUMAN, ANIME))
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
            loss_gan = -sum(scores.mean() for domain in (HUMAN, ANIME) for scores in critics[domain](augment(fakes[domain])))
            # Augmented, the generator is judged on a fresh draw of the augmentations, as the pixel critics judge it.
            activations = ({d: feature_activations(vgg, translations[d], augment, args.vgg_size) for d in criticised}
                           if augmenting else criticised)
            loss_feature = (-sum(scores.mean() for d in activations for scores in feature_critics[d](activations[d]))
                            if activations else torch.zeros(()))
            loss_recon = F.l1_loss(out.human_to_human, human) + F.l1_loss(out.anime_to_anime, drawn)
            loss_cycle_human, loss_cycle_anime = F.l1_loss(out.cycle_human, human), F.l1_loss(out.cycle_anime, drawn)
            loss_cycle = loss_cycle_human + loss_cycle_anime
            loss_content = loss_cycle_content = loss_likeness = loss_anime_likeness = torch.zeros(())
            # Unaugmented, the feature critics' deepest activations (relu4_3), of each domain's translations and
            # of the real images they were translated from, are the content and likeness losses' feature maps:
            # the VGG passes the critics made serve them all. A translation into domain d is of an image from 1 - d.
            judged = set(likeness) | ({ANIME} if args.content_weight else set())
            reusing = feature_critics is not None and not augmenting
            deepest = {d: activations[d][-1] if reusing else vgg(at_side(translations[d], args.vgg_size)) for d in judged}
            sourced = judged | ({ANIME} if args.cycle_content_weight else set())
            with torch.no_grad():
                sources = {d: real_activations[1 - d][-1] if reusing else vgg(at_side(reals[1 - d], args.vgg_size)) for d in sourced}
            if args.content_weight:
                loss_content = content.from_features(deepest[ANIME], sources[ANIME])[0]
            if args.cycle_content_weight:
                loss_cycle_content = content.from_features(vgg(at_side(out.cycle_human, args.vgg_size)), sources[ANIME])[0]
            if ANIME in likeness:
                loss_likeness = likeness[ANIME].from_features(deepest[ANIME], sources[ANIME])
            if HUMAN in likeness:
                loss_anime_likeness = likeness[HUMAN].from_features(deepest[HUMAN], sources[HUMAN])
            loss_style = (style(at_side(out.human_to_anime, args.vgg_size), at_side(drawn, args.vgg_size))
                          if style is not None else torch.zeros(()))
            loss_landmark = landmarks(human, out.human_to_anime) if landmarks is not None else torch.zeros(())
            loss_g = (loss_gan + args.feature_critic_weight * loss_feature + args.recon_weight * loss_recon
                      + args.cycle_weight * loss_cycle_human + anime_cycle_weight * loss_cycle_anime
                      + args.content_weight * loss_content + args.cycle_content_weight * loss_cycle_content
                      + args.likeness_weight * loss_likeness
                      + args.anime_likeness_weight * loss_anime_likeness + args.style_weight * loss_style
                      + args.landmark_weight * loss_landmark)
        if training_generator:
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            # Warm-up: early on the average follows the generator closely instead of the random
            # init. A fine-tuned model's average starts at trained weights and needs none.
            decay = args.ema_decay if init_from else min(args.ema_decay, (1 + step) / (10 + step))
            update_ema(ema, generator, decay)
        step += 1

        if step % args.log_every == 0 or step == args.steps:
            elapsed = time.time() - started
            rate = (step - last_step) / max(elapsed, 1e-9)
            started, last_step = time.time(), step
            values = {name: dist.mean(torch.as_tensor(float(v.detach() if torch.is_tensor(v) else v))) for name, v in
                      dict(loss_d=loss_d, loss_d_feature=loss_d_feature, loss_gan=loss_gan, loss_feature=loss_feature, loss_recon=loss_recon, loss_cycle=loss_cycle, loss_content=loss_content, loss_cycle_content=loss_cycle_content, loss_likeness=loss_likeness, loss_anime_likeness=loss_anime_likeness, loss_style=loss_style, loss_landmark=loss_landmark).items()}
            run.log(step, it_per_s=rate, lr=lr, **values)
            if dist.main:
                print(f"step {step}/{args.steps}  {rate:.3f} it/s  " + "  ".join(f"{k} {float(v):.3f}" for k, v in values.items()), flush=True)
        if step % args.sample_every == 0 or step == args.steps:
            # Drawn as export would write the average: with statistics of its own weights (fewer
            # batches than export's, enough for a grid), not the copied running estimates.
            sampler = ema
            if args.norm_batches and not frozen_statistics:
                sampler = estimate_norm_statistics(copy.deepcopy(ema), photo_batches, anime_batches,
                                                   min(args.norm_batches, GRID_NORM_BATCHES))
            with evaluating(sampler):
                to_anime = sampler(fixed_photos, ANIME)
                to_human = sampler(fixed_anime, HUMAN)
                grid = torch.cat([fixed_photos, to_anime, sampler(to_anime, HUMAN), fixed_anime, to_human, sampler(to_human, ANIME)])
            run.save_grid(step, grid, rows=len(fixed_photos))
        if step % args.save_every == 0 or step == args.steps:
            feature_state = (dict(feature_critics=feature_critics, opt_f=opt_f, feature_critic_weight=args.feature_critic_weight)
                             if feature_critics is not None else {})
            run.save_checkpoint(step, generator=generator, ema=ema, critics=critics, opt_g=opt_g, opt_d=opt_d, **feature_state,
                                **checkpoint_extras(args))
    dist.close()


def model_config(args) -> dict:
    return {"resolution": args.resolution, "width": args.width, "max_width": args.max_width, "skip_resolutions": list(args.skips),
            "norm": args.norm}


def with_training_data(args, recorded: dict | None = None) -> argparse.Namespace:
    """`args` with the data flags left unset (--photos, --anime, --batch-size) filled from `recorded`,
    a run's own as its checkpoint names them, else from the defaults: the selfie2anime photos with
    UTKFace, its drawings, batches of 8."""
    defaults = {"photos": [str(data.SELFIE_PHOTOS), str(data.UTKFACE)], "anime": [str(data.SELFIE_ANIME)], "batch_size": 8,
                **(recorded or {})}
    return argparse.Namespace(**{**vars(args), **{name: value for name, value in defaults.items() if getattr(args, name) is None}})


def training_data(args) -> dict:
    return {"photos": args.photos, "anime": args.anime, "batch_size": args.batch_size}


def checkpoint_extras(args) -> dict:
    """What a checkpoint keeps beside the models: every argument of the run, and on their own the ones a resume,
    an export and evaluation read (the model's and critics' sizes, how the run began, its data)."""
    return dict(config=model_config(args), critic_config=critic_config(args), init_from=args.init_from,
                frozen_statistics=args.freeze_norm_statistics, training_data=training_data(args), args=dict(vars(args)))


def recorded_args(payload: dict, args) -> argparse.Namespace:
    """The arguments a checkpoint's run trained with. A checkpoint from before they were recorded names only its
    sizes, start and data: this command's flags (its loss weights, rates) stand for the rest."""
    recorded = Run.arguments(payload, argparse.Namespace(**{
        **vars(args), **payload.get("critic_config", {}), **payload.get("training_data", {}),
        "init_from": payload.get("init_from"), "freeze_norm_statistics": payload.get("frozen_statistics", False),
        "feature_critic_weight": payload.get("feature_critic_weight", 0.0)}))
    adopt_generator_config(recorded, payload["config"])
    return with_training_data(recorded)


def exported_state(folder) -> dict:
    """An export's training state as the payload of the checkpoint it was written from, its extras from the
    arguments it recorded."""
    payload = read_training_state(folder)
    recorded = argparse.Namespace(**payload["args"])
    return {**payload, **checkpoint_extras(recorded), "feature_critic_weight": recorded.feature_critic_weight}


def training_batches(args, resolution: int):
    """Endless shuffled training batches of photos and of anime portraits, as training draws them."""
    seed_everything(args.seed)
    datasets = [face_dataset(folders, resolution) for folders in (args.photos, args.anime)]
    # A folder smaller than a batch gives one short batch per epoch, as in training, not none.
    return tuple(forever(DataLoader(faces, args.batch_size, shuffle=True, drop_last=len(faces) >= args.batch_size))
                 for faces in datasets)


def with_own_statistics(model: TwinGAN, args) -> TwinGAN:
    """`model` in eval mode, its batch-norm statistics first estimated afresh (unless --norm-batches 0)."""
    if not args.norm_batches:
        return model.eval()
    set_threads(args.threads)
    return estimate_norm_statistics(model, *training_batches(args, model.resolution), args.norm_batches)


def exported_generator(payload: dict, args) -> TwinGAN:
    """A checkpoint's EMA generator as `--export` writes it: with statistics of its own weights,
    estimated over the run's own data unless the flags say otherwise, or kept as trained if the run
    froze them."""
    model = checkpoint_generator(payload)
    if payload.get("frozen_statistics"):
        return model.eval()
    return with_own_statistics(model, with_training_data(args, payload.get("training_data")))


def export(args):
    """Write the run's EMA generator as a Hub model folder (config.json + model.safetensors), and beside it the
    training state `--resume-from` continues from (`cartoon.training_state`): the other models and the optimisers."""
    run = Run(args.run, main=False)
    if not run.checkpoint_path.is_file():
        raise SystemExit(f"no checkpoint at {run.checkpoint_path}")
    payload = run.read_checkpoint()
    exported_generator(payload, args).save_pretrained(args.export)
    # the run's own arguments, not this command's, built the models and go into training.json
    recorded = recorded_args(payload, args)
    generator, critics = build_models(recorded)
    modules = dict(generator=generator, critics=critics)
    if "feature_critics" in payload:
        modules["feature_critics"] = build_feature_critics(VGG16Features(pretrained=False))
    # The most needed first: moments beyond the state's budget are left out in this order. Their
    # hyper-parameters come with their saved state.
    optimisers = {name: torch.optim.Adam(modules[models].parameters())
                  for name, models in (("opt_d", "critics"), ("opt_g", "generator"), ("opt_f", "feature_critics")) if models in modules}
    step = Run.restore(payload, **modules, **optimisers)
    written = export_training_state(args.export, step, recorded, **modules, **optimisers)
    left_out = f", {', '.join(written['moments_omitted'])} moments left out" if written["moments_omitted"] else ""
    print(f"exported step {step} EMA generator and training state ({written['state_bytes'] / 1e6:.1f} MB{left_out}) to {args.export}")


def recalibrate(args):
    """Re-estimate a saved model's batch-norm statistics, in place."""
    with_own_statistics(TwinGAN.from_pretrained(args.recalibrate), with_training_data(args)).save_pretrained(args.recalibrate)
    print(f"re-estimated the batch-norm statistics of {args.recalibrate} over {args.norm_batches} batches")


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
    parser.add_argument("--critic-width", type=int, help="the critics' channels at full resolution (default: --width)")
    parser.add_argument("--critic-max-width", type=int, help="(default: --max-width)")
    parser.add_argument("--critic-patches", type=int, metavar="RES", help="the critics also score each patch of their "
                        "RES² features, a local critic beside the global one (16: 24-pixel patches of 128² images)")
    parser.add_argument("--blurred-fakes", type=float, metavar="SIGMA", help="each critic also learns its domain's real "
                        "images blurred by a Gaussian of SIGMA pixels as fakes (an edge-promoting loss, as CartoonGAN's)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--widen-from", metavar="RUN", help="start from RUN's checkpoint, its generator widened twice "
                       "(give --width/--max-width twice RUN's, and RUN's widths as --critic-width/--critic-max-width)")
    start.add_argument("--init-from", metavar="FOLDER", help="fine-tune a saved model (config.json + model.safetensors, "
                       "as in weights/twingan): the generator and its average start as that model, sized by its config, "
                       "with new critics and optimisers")
    parser.add_argument("--critic-warmup", type=int, default=0, metavar="STEPS", help="for the run's first STEPS steps "
                        "train only the critics, so new critics learn the generator's output before it sees their gradient")
    parser.add_argument("--freeze-norm-statistics", action="store_true", help="batch norms normalise by their running "
                        "statistics in training as at inference, and keep them, so the critics judge exactly what the "
                        "model will make (with --init-from: the saved model's statistics; on a --resume: from there on, "
                        "the critics kept, with the statistics export would give the run's average); export writes them")
    parser.add_argument("--norm", choices=TwinGAN.NORMS, default="batch", help="the generator's per-domain "
                        "switch: batch norm (TwinGAN's, the shipped model), per-image layer-instance norm, or per-domain styles "
                        "on demodulated convolutions (no activation statistics)")
    parser.add_argument("--skips", type=int, nargs="*", default=[8, 16, 32], help="resolutions with U-Net skips")
    parser.add_argument("--recon-weight", type=float, default=10.0)
    parser.add_argument("--cycle-weight", type=float, default=10.0, help="human → anime → human cycle L1, and "
                        "the anime → human → anime one unless --anime-cycle-weight says otherwise")
    parser.add_argument("--anime-cycle-weight", type=float, help="anime → human → anime cycle L1 (default: --cycle-weight)")
    parser.add_argument("--cycle-translation-scale", type=float, default=1.0, help="scales the gradient that each cycle "
                        "loss sends into the round trip's first pass, the translation, and not into the way back (0.1 with "
                        "--cycle-weight 10: the translation learns from the round trip at weight 1, the way back at 10)")
    parser.add_argument("--content-weight", type=float, default=0.0, help="VGG16 relu4_3 L1 between each photo and its anime translation (0: off)")
    parser.add_argument("--cycle-content-weight", type=float, default=0.0, help="VGG16 relu4_3 L1 between each photo "
                        "and its round trip human → anime → human, so the way back keeps what the photo's features say "
                        "of the face (gender, age) and not only its pixels (0: off)")
    parser.add_argument("--likeness-weight", type=float, default=0.0, help="contrastive loss: each photo's anime translation "
                        "should be, of that photo and ~1,000 others, most like its own on pooled VGG16 relu4_3 (0: off)")
    parser.add_argument("--anime-likeness-weight", type=float, default=0.0, help="the same for the anime → human "
                        "translations: each must pick out its own anime portrait (0: off)")
    parser.add_argument("--style-weight", type=float, default=0.0, help="L1 between the mean VGG16 Gram matrices of the "
                        "anime translations and of a real anime batch (0: off)")
    parser.add_argument("--landmark-weight", type=float, default=0.0, help="each photo's anime translation keeps the "
                        "photo's 5 RetinaFace landmarks (cartoon.faces.LandmarkLoss, in eye distances; needs --resolution "
                        "64 or more; 0: off)")
    parser.add_argument("--landmark-measure", choices=["points", "pose"], default="points", help="what the landmark "
                        "term keeps: the 5 points where they are, or the head's pose (eye, nose and mouth centres, eye "
                        "and mouth lines), which leaves anime eye spacing and mouth width free")
    parser.add_argument("--feature-critic-weight", type=float, help="a second critic per domain on frozen VGG16 "
                        "activations (relu2_2, relu3_3, relu4_3) judges the translations; the weight of its GAN loss, "
                        "a sum over the three layers' heads (0: off; default: a resumed run's, else off)")
    parser.add_argument("--vgg-size", type=int, default=64, help="side at which the feature critics, content and style losses see images")
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
