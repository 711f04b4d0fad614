"""One training step of the style-based generator: the critic's update, then the generator's and its average's.

The critic pays the non-saturating logistic loss on real faces (flipped at random) against one batch of
generated faces, and R1 on schedule; in a colour run its heads learn the colours of real faces, as does the
thumbnail reader if the run has one, and the twin heads those of generated faces. The generator then pays
the critic's loss on the same faces, plus the colour terms the run's flags ask for. The flags, the models
and the loop are `cartoon.stylegan.train`'s.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from cartoon.acgan.train import colour_terms, mode_seeking_loss
from cartoon.augment import diff_augment
from cartoon.stylegan.colour_readers import TwinClassifier
from cartoon.stylegan.critic import Discriminator
from cartoon.stylegan.model import Generator
from cartoon.training import autocast, memory_format, update_ema


def fake_colours(pairs: torch.Tensor, batch: int, paired: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Hair and eye indices for `batch` generated faces, uniform over the (hair, eyes) `pairs` (P, 2).

    `paired`: the second half of the batch repeats the first half's colours, for the mode-seeking term."""
    drawn = pairs[torch.randint(len(pairs), ((batch + 1) // 2 if paired else batch,), device=pairs.device)]
    if paired:
        drawn = twice(drawn, batch)
    return drawn[:, 0], drawn[:, 1]


def twice(t: torch.Tensor, batch: int) -> torch.Tensor:
    return t.repeat(2, *[1] * (t.dim() - 1))[:batch]


def generate(args, generator: Generator, batch: int, device, colours: torch.Tensor | None = None,
             paired: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of faces (of `colours`, for a conditional generator) and their z's, `args.mixing` of
    the time from two w's switching at a random style; the w's also move the generator's tracked mean w.

    `paired`: the batch's halves share per-layer noise and mixing w's, so that two faces of a pair
    differ by their z alone; else the mode-seeking term is paid by louder noise, not by z."""
    z = torch.randn(batch, args.latent_dim, device=device)
    w = generator.mapping(z, colours)
    generator.track_w_avg(w)
    noise = [twice(n, batch) for n in generator.noises("random", (batch + 1) // 2, device)] if paired else "random"
    if random.random() < args.mixing:
        z_mix = torch.randn((batch + 1) // 2 if paired else batch, args.latent_dim, device=device)
        w_mix = generator.mapping(twice(z_mix, batch) if paired else z_mix, colours)
        return generator.synthesis(generator.styles(w, w_mix, random.randint(1, generator.num_ws - 1), colours), noise), z
    return generator.synthesis(generator.styles(w, colours=colours), noise), z


def augment(args, images: torch.Tensor) -> torch.Tensor:
    return images if args.diffaugment == "none" else diff_augment(images, args.diffaugment)


def classify(args, discriminator: Discriminator, images: torch.Tensor, twin: TwinClassifier | None = None):
    """The critic's (hair, eye) logits of faces augmented in ways that keep their colours (translation
    only); with `twin`, also the twin's, from the same pass through the critic."""
    if "translation" in args.diffaugment:
        images = diff_augment(images, "translation")
    features = discriminator.features(images)
    logits = tuple(x.float() for x in discriminator.classify(features))
    return logits if twin is None else (logits, tuple(x.float() for x in twin(features)))


def r1_penalty(args, discriminator, real: torch.Tensor) -> torch.Tensor:
    """Squared gradient norm of the critic's score at real faces (as augmented), the mean per face."""
    real = real.detach().requires_grad_(True)
    with autocast(args, real.device):
        score = discriminator(augment(args, real))
    (gradient,) = torch.autograd.grad(score.float().sum(), real, create_graph=True)
    return gradient.float().square().sum((1, 2, 3)).mean()


def train_step(args, models: dict, real: torch.Tensor, step: int, labels: tuple | None = None) -> dict[str, torch.Tensor]:
    """One critic and one generator update (and R1 on schedule); returns what to log.

    `labels`, for a conditional run: the real faces' hair and eye indices and the (P, 2) pairs
    that generated faces are drawn from."""
    generator, discriminator, ema, opt_g, opt_d = (models[k] for k in ("generator", "discriminator", "ema", "opt_g", "opt_d"))
    twin, opt_twin = models.get("twin"), models.get("opt_twin")
    thumb = models.get("thumb")
    # the generator's colour terms read through frozen readers when the run has them
    colour_critic = models.get("frozen_critic", discriminator)
    # readers that learn (those with an optimiser) pause for the generator's step; frozen ones never learn
    live_readers = [models[name] for name in ("twin", "thumb") if f"opt_{name}" in models]
    device = real.device
    real = torch.where(torch.rand(len(real), 1, 1, 1, device=device) < 0.5, real, real.flip(3)).contiguous(memory_format=memory_format(args))
    logged = {}
    colours = None
    paired = labels is not None and args.mode_seeking > 0  # the mode-seeking term compares the batch's two halves
    if labels is not None:
        hair_real, eyes_real, pairs = labels
        hair_fake, eyes_fake = fake_colours(pairs, len(real), paired)
        colours = generator.colours(hair_fake, eyes_fake)
    with autocast(args, device):
        fake, z = generate(args, generator, len(real), device, colours, paired)
        score_real = discriminator(augment(args, real)).float()
        score_fake = discriminator(augment(args, fake.detach())).float()
        loss_d = F.softplus(score_fake).mean() + F.softplus(-score_real).mean()
        if labels is not None:  # the colour heads learn on real faces only: a clean judge
            logged |= colour_terms(classify(args, discriminator, real), hair_real, eyes_real, "real")
            loss_d = loss_d + args.cls_weight * logged["cls_real"]
        if twin is not None:  # the twin learns the colours of generated faces
            _, twin_logits = classify(args, discriminator, fake.detach(), twin)
            logged |= {f"{k}_twin": v for k, v in colour_terms(twin_logits, hair_fake, eyes_fake, "fake").items()}
            loss_d = loss_d + args.cls_weight * logged["cls_fake_twin"]
    opt_d.zero_grad(set_to_none=True)
    if twin is not None:
        opt_twin.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    if twin is not None:
        opt_twin.step()

    if "opt_thumb" in models:  # the thumbnail reader learns on real faces only, as the critic's heads do (unless frozen)
        logits = thumb(real)
        logged |= {"thumb_real": F.cross_entropy(logits, hair_real), "acc_thumb_real": (logits.argmax(1) == hair_real).float().mean()}
        models["opt_thumb"].zero_grad(set_to_none=True)
        logged["thumb_real"].backward()
        models["opt_thumb"].step()

    if args.r1 > 0 and step % args.r1_every == 0:
        logged["r1"] = r1_penalty(args, discriminator, real)
        opt_d.zero_grad(set_to_none=True)
        (args.r1 / 2 * args.r1_every * logged["r1"]).backward()
        opt_d.step()

    discriminator.requires_grad_(False)  # the generator's step needs no critic (or twin) weight gradients
    for reader in live_readers:
        reader.requires_grad_(False)
    with autocast(args, device):
        loss_g = F.softplus(-discriminator(augment(args, fake)).float()).mean()
        if labels is not None:  # faces the heads read as the colours they were drawn with
            read = classify(args, colour_critic, fake, twin)
            logits, twin_logits = (read, None) if twin is None else read
            logged |= colour_terms(logits, hair_fake, eyes_fake, "fake")
            loss_g = loss_g + args.cls_weight * logged["cls_fake"]
            if twin is not None:  # ... and no more surely than the twin reads them
                twin_error = colour_terms(twin_logits, hair_fake, eyes_fake, "fake")["cls_fake"]
                loss_g = loss_g - args.cls_weight * args.twin_weight * twin_error
            if thumb is not None:
                logged["thumb_fake"] = F.cross_entropy(thumb(fake), hair_fake)
                loss_g = loss_g + args.thumbnail_weight * logged["thumb_fake"]
            if args.mode_seeking > 0:  # the colour terms alone leave a pair a few near-copies, as they did v2
                logged["mode_seeking"] = mode_seeking_loss(fake.float(), z)
                loss_g = loss_g + args.mode_seeking * logged["mode_seeking"]
    generator_optimisers = [opt_g] + ([models["opt_colour_styles"]] if "opt_colour_styles" in models else [])
    for optimiser in generator_optimisers:
        optimiser.zero_grad(set_to_none=True)
    loss_g.backward()
    for optimiser in generator_optimisers:
        optimiser.step()
    discriminator.requires_grad_(True)
    for reader in live_readers:
        reader.requires_grad_(True)
    # early on the average would be mostly the random initialisation: warm the decay up
    update_ema(ema, generator, min(args.ema_decay, (1 + step) / (10 + step)))
    return {"loss_d": loss_d, "loss_g": loss_g, "score_real": score_real.mean(), "score_fake": score_fake.mean(), **logged}
