"""One TwinGAN training step: the critics' update, then the generator's and its moving average's.

`TrainingStep` holds what a step uses beside the generator and its critics: the terms that tie each
translation to its source, and for a colour-conditioned run the frozen colour judge. The losses
themselves are in `cartoon.twingan.losses`.
"""

from __future__ import annotations

import torch
from torch import nn

from cartoon.augment import diff_augment
from cartoon.training import autocast, update_ema
from cartoon.twingan.colour import colour_loss, load_judge, random_colours
from cartoon.twingan.losses import CYCLE_WEIGHT, DOMAINS, RECONSTRUCTION_WEIGHT, SourceTerms, critic_loss, pixel_losses, translate_both_ways
from cartoon.twingan.model import ANIME, HUMAN, TwinGAN


def freeze_batch_norms(generator: TwinGAN) -> None:
    """Batch norms normalise by their running statistics in training too, as at inference, and keep them."""
    for module in generator.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()


class TrainingStep:
    """The run's models, optimisers and frozen networks, and one step of training them.

    `fine_tuning` (the run began from a trained model) lets the average follow the generator without a warm-up.
    """

    def __init__(self, args, dist, generator, ema, critics, opt_g, opt_d, fine_tuning: bool, fmt):
        self.args, self.generator, self.ema, self.critics, self.opt_g, self.opt_d = args, generator, ema, critics, opt_g, opt_d
        self.fine_tuning, self.device = fine_tuning, dist.device
        self.g = dist.wrap(generator)
        self.source_terms = SourceTerms(args, self.device, fmt)
        self.wrapped_critics = [dist.wrap(c) for c in critics]  # synchronised in the critic step
        # Colour-conditioned, each anime portrait comes with its tags, and the frozen judge that read them holds
        # every photo's anime translation to the colours it was asked for.
        self.judge = load_judge().to(self.device) if args.colour_condition else None
        self.augmenting = args.diffaugment != "none"

    def augment(self, x):
        return diff_augment(x, self.args.diffaugment) if self.augmenting else x

    def __call__(self, human: torch.Tensor, drawn: torch.Tensor, drawn_colours, step: int) -> dict[str, torch.Tensor]:
        """Train on one batch of photos and one of anime portraits (with their colour tags, or None); the losses."""
        args, critics, augment = self.args, self.critics, self.augment
        requested = random_colours(len(human), self.device) if self.judge is not None else None
        reals = {HUMAN: human, ANIME: drawn}
        # During the critic warm-up the generator stands still: no graph through it, no update.
        training_generator = step >= args.critic_warmup

        with torch.set_grad_enabled(training_generator), autocast(args, self.device):
            out = translate_both_ways(self.g, human, drawn, requested=requested, drawn_colours=drawn_colours)
        fakes = {d: out.into(d) for d in DOMAINS}

        # Critics: hinge loss, each domain's real images against everything generated into it.
        critics.requires_grad_(True)
        with autocast(args, self.device):
            loss_d = sum(critic_loss(self.wrapped_critics[d], reals[d], fakes[d].detach(), augment) for d in DOMAINS)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # Generator: fool each domain's critics, reconstruct each domain, close both cycles. The critics are
        # frozen here, so their unwrapped modules suffice (nothing of theirs needs synchronising).
        critics.requires_grad_(False)
        with torch.set_grad_enabled(training_generator), autocast(args, self.device):
            loss_gan = -sum(critics[d](augment(fakes[d])).mean() for d in DOMAINS)
            loss_recon, loss_cycle = pixel_losses(out, human, drawn)
            loss_colour = colour_loss(self.judge, out.human_to_anime, requested) if self.judge is not None else torch.zeros(())
            held = self.source_terms(out, reals)
            loss_g = (loss_gan + RECONSTRUCTION_WEIGHT * loss_recon + CYCLE_WEIGHT * loss_cycle + args.colour_weight * loss_colour
                      + self.source_terms.weighted(held))
        if training_generator:
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            # Warm-up: early on the average follows the generator closely instead of the random
            # init. A fine-tuned model's average starts at trained weights and needs none.
            decay = args.ema_decay if self.fine_tuning else min(args.ema_decay, (1 + step) / (10 + step))
            update_ema(self.ema, self.generator, decay)
        return dict(loss_d=loss_d, loss_gan=loss_gan, loss_recon=loss_recon, loss_cycle=loss_cycle, loss_colour=loss_colour,
                    **{f"loss_{name}": loss for name, loss in held.items()})
