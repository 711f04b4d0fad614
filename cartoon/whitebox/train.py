"""Full white-box training: photos in, cartoons out, steered by three representations.

Starts from a reconstruction-pre-trained generator (`--pretrained runs/whitebox_pretrain`).

    python -m cartoon.whitebox.train --pretrained runs/whitebox_pretrain --threads 1
    python -m cartoon.whitebox.train --resume --w-landmark 1          # add the landmark term later
    python -m cartoon.whitebox.train --export weights/whitebox        # ship the EMA generator and the training state
    python -m cartoon.whitebox.train --resume-from weights/whitebox --run-dir runs/whitebox2 --steps 30000   # go on elsewhere
    torchrun --nproc_per_node 4 -m cartoon.whitebox.train --photos a/ b/ --cartoons c/

Loss weights (see `cartoon.whitebox.losses`): --w0 surface GAN, --w1 texture GAN, --w2 structure
content, --w3 photo content, --w4 total variation, --w-landmark face landmarks, --w-flat pixel pull toward the
superpixel map (`--flat-target superpixel-ink`: with the output's own thin dark lines inked in), --w-colour the
photo's local mean colours kept, --w-luma its luminance at a face's scale, --w-skin-luma its luminance on the
face's skin, --w-feature a critic on frozen
VGG16 features of grey cartoons and outputs.
"""

from __future__ import annotations

import argparse
import copy
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
    update_ema,
)
from cartoon.training_state import export_training_state, parse_resumable, read_training_state
from cartoon.vgg import FEATURE_CRITIC_LAYERS, ContentLoss, FeatureCritic, VGG16Features, feature_critic_loss
from cartoon.whitebox import representations as rep
from cartoon.whitebox.data import add_data_args, image_dataset
from cartoon.whitebox.losses import (PatchDiscriminator, colour_drift, discriminator_loss, generator_loss, luma_drift,
                                     skin_luma_drift, total_variation)
from cartoon.whitebox.model import Generator

# (radius, eps) of the output guided filter an export gets when neither the command nor the run names one
EXPORT_FILTER = (4, 0.02)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "whitebox")
    add_data_args(parser)
    parser.add_argument("--pretrained", help="run folder of cartoon.whitebox.pretrain to start the generator from")
    parser.add_argument("--export", metavar="FOLDER", help="only write RUN/checkpoint.pt's EMA generator (save_pretrained) "
                        "and its training state to FOLDER")
    # Training keeps the paper's output filter (radius 1, eps 5e-3); a wider one at inference
    # flattens colour regions while faces stay put (weights/whitebox/README.md has the figures).
    parser.add_argument("--export-radius", type=int, help="radius of the exported model's output guided filter "
                        f"(default: the run's own, else {EXPORT_FILTER[0]})")
    parser.add_argument("--export-eps", type=float, help=f"eps of the exported model's output guided filter (default: the run's own, else {EXPORT_FILTER[1]})")
    parser.add_argument("--w0", type=float, default=0.5, help="surface GAN weight")
    parser.add_argument("--w1", type=float, default=1.0, help="texture GAN weight")
    parser.add_argument("--w2", type=float, default=1.0, help="structure (superpixel) content weight")
    parser.add_argument("--w3", type=float, default=1.0, help="photo content weight")
    parser.add_argument("--w4", type=float, default=0.5, help="total variation weight")
    parser.add_argument("--w-flat", type=float, default=0.0,
                        help="L1 pixel pull toward the superpixel map (not in the paper: flattens colour regions in few steps)")
    parser.add_argument("--flat-target", choices=["superpixel", "superpixel-ink"], default="superpixel",
                        help="what --w-flat pulls toward: the superpixel map, or the same with the output's own thin "
                             "dark lines painted in as ink (representations.line_ink), so fills go flat and lines stay")
    parser.add_argument("--w-colour", type=float, default=0.0, help="L1 between 8×8-block mean colours of photo and output")
    parser.add_argument("--w-luma", type=float, default=0.0,
                        help="L1 between photo and output luminance box-averaged at a face's scale, a radius of a quarter of the crop's side")
    parser.add_argument("--w-skin-luma", type=float, default=0.0,
                        help="L1 between photo and output typical (interquartile-mean) luminance on the face's skin, placed by the photo's landmarks "
                             "(cartoon.faces.skin; uses the landmark term's detector, which then finds the photos' faces every step "
                             "whatever --landmark-every)")
    parser.add_argument("--w-feature", type=float, default=0.0,
                        help="hinge critic on frozen VGG16 relu2_2/3_3/4_3 activations of grey cartoons against grey "
                             "outputs (cartoon.vgg.FeatureCritic; not in the paper)")
    parser.add_argument("--w-landmark", type=float, default=0.0, help="face landmark weight (cartoon.faces.LandmarkLoss)")
    parser.add_argument("--landmark-every", type=int, default=1, help="apply the landmark term every k steps")
    parser.add_argument("--landmark-own-anchors", action=argparse.BooleanOptionalAction, default=False,
                        help="also read the landmarks at the cartoon's own most confident anchors, where a detector reads them")
    parser.add_argument("--landmark-face-score", type=float, default=0.0, metavar="W",
                        help="inside the landmark term, W × −log of the detector's face score of the cartoon at the photo's "
                        "face anchors: pays for the drawn face still being found, which the evaluation's faces kept counts")
    parser.add_argument("--landmark-detect-side", type=int, default=None, metavar="PX",
                        help="the landmark term's detector sees photo and cartoon enlarged to this side (512: the side "
                             "detect_faces and the evaluation use); default: the crop's own size")
    parser.add_argument("--superpixels", choices=["slic", "felzenszwalb"], default="slic")
    parser.add_argument("--segments", type=int, default=100, help="superpixels per training crop")
    parser.add_argument("--d-lr", type=float, default=None, help="discriminator learning rate (default: --lr)")
    parser.add_argument("--ema", type=float, default=0.999, help="decay of the generator's moving average")
    parser.set_defaults(steps=20000, batch_size=8)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return parse_resumable(build_parser(), argv)


def build_models(args, device) -> dict:
    """Generator, its EMA, the critics and the optimisers, in the run's memory order. The feature
    critic (`--w-feature`) has its own optimiser, so a run without it resumes into one with it."""
    fmt = memory_format(args)
    generator = Generator(channels=args.channels, blocks=args.blocks).to(device, memory_format=fmt)
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    d_surface = PatchDiscriminator(3).to(device, memory_format=fmt)
    d_texture = PatchDiscriminator(1).to(device, memory_format=fmt)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.99))
    d_params = list(d_surface.parameters()) + list(d_texture.parameters())
    opt_d = torch.optim.Adam(d_params, lr=args.d_lr or args.lr, betas=(0.5, 0.99))
    models = dict(generator=generator, ema=ema, d_surface=d_surface, d_texture=d_texture, opt_g=opt_g, opt_d=opt_d)
    if args.w_feature > 0:
        models["d_feature"] = FeatureCritic().to(device, memory_format=fmt)
        models["opt_f"] = torch.optim.Adam(models["d_feature"].parameters(), lr=args.d_lr or args.lr, betas=(0.5, 0.99))
    return models


class Trainer:
    """Models, optimisers and one training step; kept apart from the loop so tests can drive it."""

    def __init__(self, args, device, wrap=lambda m: m):
        self.args = args
        self.models = build_models(args, device)
        names = ("generator", "ema", "d_surface", "d_texture", "opt_g", "opt_d")
        self.generator, self.ema, self.d_surface, self.d_texture, self.opt_g, self.opt_d = (self.models[k] for k in names)
        self.vgg = VGG16Features("relu4_3").to(device, memory_format=memory_format(args))
        self.content = ContentLoss(self.vgg)  # one frozen VGG16 for the content terms and the feature critic
        self.d_feature, self.opt_f = self.models.get("d_feature"), self.models.get("opt_f")
        self.landmarks = None
        if args.w_landmark > 0 or args.w_skin_luma > 0:
            from cartoon.faces import LandmarkLoss  # a face detector is loaded only when asked for

            self.landmarks = LandmarkLoss(own_anchors=args.landmark_own_anchors, confidence_weight=args.landmark_face_score,
                                          detect_side=args.landmark_detect_side)
            self.landmarks.to(device, memory_format=memory_format(args))
        self.g = wrap(self.generator)
        self.ds, self.dt = wrap(self.d_surface), wrap(self.d_texture)
        self.df = wrap(self.d_feature) if self.d_feature is not None else None

    def state(self):
        return dict(self.models)

    def step(self, photo, cartoon, step: int) -> dict[str, torch.Tensor]:
        a = self.args
        photo, cartoon = (batch.contiguous(memory_format=memory_format(a)) for batch in (photo, cartoon))
        # the generator's guided filter, and so `fake` and the surfaces, stay float32 under autocast
        with autocast(a, photo.device):
            fake = self.g(photo)

            # discriminators: real cartoons vs current outputs, as smoothed surfaces and as grey textures
            grey_cartoon, grey_fake = rep.texture(cartoon, fake)
            d_surface = discriminator_loss(self.ds(rep.surface(cartoon)), self.ds(rep.surface(fake.detach())))
            d_texture = discriminator_loss(self.dt(grey_cartoon), self.dt(grey_fake.detach()))
        self.opt_d.zero_grad(set_to_none=True)
        (d_surface + d_texture).backward()
        self.opt_d.step()

        # the feature critic sees the texture representation's greys, each stretched to one mean and
        # contrast: shown colour, or plain greys, it learned the cartoon set's palette or its light,
        # low-contrast pictures and paled every face within 200 steps
        if self.df is not None:
            with autocast(a, photo.device):
                with torch.no_grad():
                    cartoon_features = self.vgg.activations(rep.standardised_grey(grey_cartoon), FEATURE_CRITIC_LAYERS)
                fake_features = self.vgg.activations(rep.standardised_grey(grey_fake), FEATURE_CRITIC_LAYERS)
                d_feature = feature_critic_loss(self.df, cartoon_features, fake_features)
            self.opt_f.zero_grad(set_to_none=True)
            d_feature.backward()
            self.opt_f.step()

        # generator
        with autocast(a, photo.device):
            losses = {
                "surface": generator_loss(self.ds(rep.surface(fake))),
                "texture": generator_loss(self.dt(grey_fake)),
            }
            structure = rep.structure(fake, a.superpixels, a.segments)
            losses["structure"], losses["content"] = self.content(fake, structure, photo)
            losses["tv"] = total_variation(fake)
            weights = {"surface": a.w0, "texture": a.w1, "structure": a.w2, "content": a.w3, "tv": a.w4}
            if a.w_flat > 0:
                target = structure if a.flat_target == "superpixel" else rep.line_ink(structure, fake)
                losses["flat"] = F.l1_loss(fake, target)
                weights["flat"] = a.w_flat
            if a.w_colour > 0:
                losses["colour"] = colour_drift(photo, fake)
                weights["colour"] = a.w_colour
            if a.w_luma > 0:
                losses["luma"] = luma_drift(photo, fake)
                weights["luma"] = a.w_luma
            if self.df is not None:
                losses["feature"] = -sum(scores.mean() for scores in self.df(fake_features))
                weights["feature"] = a.w_feature
            # counted from 1 like the log, so a logged step carries the term whenever --log-every is a multiple of --landmark-every
            with_landmarks = a.w_landmark > 0 and (step + 1) % a.landmark_every == 0
            if with_landmarks or a.w_skin_luma > 0:
                faces = self.landmarks.locate(photo)
            if with_landmarks:
                losses["landmark"] = self.landmarks(photo, fake, faces)
                weights["landmark"] = a.w_landmark
            if a.w_skin_luma > 0:
                losses["skin_luma"] = skin_luma_drift(photo, fake, *faces.landmarks())
                weights["skin_luma"] = a.w_skin_luma
            total = sum(weights[k] * v for k, v in losses.items())
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        update_ema(self.ema, self.generator, a.ema)

        losses.update(total=total, d_surface=d_surface, d_texture=d_texture)
        if self.df is not None:
            losses["d_feature"] = d_feature
        return {k: v.detach() for k, v in losses.items()}


def export(args) -> Path:
    """The run's EMA generator as a shippable Hub folder (config.json + model.safetensors), with the
    training state `--resume-from` continues from (`cartoon.training_state`)."""
    payload = Run(args.run, main=False).read_checkpoint()
    # the run's own arguments, not this command's defaults, built the models and go into training.json
    recorded = Run.arguments(payload, args)
    models = build_models(recorded, "cpu")
    step = Run.restore(payload, **models)
    # a fresh model, with contiguous weights, which safetensors requires, and the inference filter this command
    # names, else the run's: an export of a run that went on from an export keeps the filter that one shipped with
    radius = next(r for r in (args.export_radius, recorded.export_radius, EXPORT_FILTER[0]) if r is not None)
    eps = next(e for e in (args.export_eps, recorded.export_eps, EXPORT_FILTER[1]) if e is not None)
    generator = Generator(channels=recorded.channels, blocks=recorded.blocks, radius=radius, eps=eps)
    recorded.export_radius, recorded.export_eps = radius, eps  # so a run that goes on from this export keeps it
    generator.load_state_dict(models.pop("ema").state_dict())
    folder = Path(args.export)
    generator.save_pretrained(str(folder))
    written = export_training_state(folder, step, recorded, **models)
    print(f"step {step} EMA generator and training state ({written['state_bytes'] / 1e6:.1f} MB) of {args.run} -> {folder}")
    return folder


def main(argv=None):
    args = parse_args(argv)
    if args.export:
        return export(args)
    set_threads(args.threads)
    dist = Distributed(args.device)
    seed_everything(args.seed + dist.rank)
    run = Run(args.run, dist.main)
    trainer = Trainer(args, dist.device, dist.wrap)

    step = 0
    if args.resume:
        step = run.load_checkpoint(dist.device, **trainer.state())
    elif args.resume_from:
        step = Run.restore(read_training_state(args.resume_from), **trainer.state())
    elif args.pretrained:
        Run(args.pretrained, main=False).load_checkpoint(dist.device, generator=trainer.generator)
        trainer.ema.load_state_dict(trainer.generator.state_dict())

    photos = forever(dist.loader(image_dataset(args.photos, args.size), args.batch_size, args.workers, args.seed))
    cartoons = forever(dist.loader(image_dataset(args.cartoons, args.size), args.batch_size, args.workers, args.seed + 1))
    preview = next(photos)[:8].to(dist.device)

    bar = tqdm(range(step, args.steps), initial=step, total=args.steps, disable=not dist.main, desc="whitebox")
    rates = DecayingRates(trainer.state().values(), args.lr_decay_from, args.steps)
    with StopRequest(dist) as stop_requested:
        for step in bar:
            lr = args.lr * rates(step)
            losses = trainer.step(next(photos).to(dist.device), next(cartoons).to(dist.device), step)
            done = step + 1
            stopped = stop_requested()
            if done % args.log_every == 0 or stopped:
                values = {k: dist.mean(v).item() for k, v in losses.items()}
                run.log(done, **values, lr=lr)
                bar.set_postfix(g=f"{values['total']:.3f}", d=f"{values['d_surface'] + values['d_texture']:.3f}")
            if done % args.sample_every == 0 or done == args.steps:
                with evaluating(trainer.generator):
                    grid = torch.cat([preview, trainer.generator(preview), trainer.ema(preview)])
                run.save_grid(done, grid, rows=len(preview))
            if done % args.save_every == 0 or done == args.steps or stopped:
                run.save_checkpoint(done, args=vars(args), **trainer.state())
            if stopped:
                break
        dist.close()


if __name__ == "__main__":
    main()
