"""A TwinGAN run's models and checkpoint: building the models from a run's arguments, what a checkpoint
records beside them, and reading it back as `--export`, `--resume-from` and `evaluate --run-dir` do."""

from __future__ import annotations

import argparse

import torch
from torch import nn

from cartoon.training import Run, measure_batchnorm_statistics, memory_format, set_threads
from cartoon.training_state import export_training_state, read_training_state
from cartoon.twingan.colour import COLOUR_CLASSES, random_colours
from cartoon.twingan.data import anime_batch, training_batches, training_data, with_training_data
from cartoon.twingan.losses import DOMAINS, translate_both_ways
from cartoon.twingan.model import SKIP_RESOLUTIONS, Discriminator, MultiScaleCritic, TwinGAN, removed_switch

# The feature critics' and likeness terms' weights, which every run recorded (the current line's at 0, off) until the
# terms lost and were removed (docs/twingan-experiments.md), and the last commit that still trains them.
REMOVED_TERMS = ("feature_critic_weight", "likeness_weight", "anime_likeness_weight")
LAST_WITH_FEATURE_CRITICS_AND_LIKENESS = "2498e62"
# The last commit whose trainer still has the switches that lost their arms later (docs/twingan-experiments.md):
# the contrastive term, the training portraits cut to the photos' framing, and other U-Net skips than the default.
LAST_WITH_LOST_TRAINER_SWITCHES = "6cc29a0"


def model_config(args) -> dict:
    # exports recorded before colours, the critics' scales, the skips and their domain views were options name none
    # of them; a new run has the default skips, a resumed or fine-tuned one its model's
    return {"resolution": args.resolution, "width": args.width, "max_width": args.max_width,
            "skip_resolutions": list(getattr(args, "skip_resolutions", None) or SKIP_RESOLUTIONS),
            "colour_classes": COLOUR_CLASSES if getattr(args, "colour_condition", False) else None,
            "domain_skips": bool(getattr(args, "domain_skips", False))}


def critic_config(args) -> dict:
    return {"critic_width": args.critic_width, "critic_max_width": args.critic_max_width, "critic_scales": getattr(args, "critic_scales", 1)}


def refuse_removed_switches(config: dict) -> None:
    """Stop a run, export or evaluation of a model saved with a switch since removed before any state is
    half-loaded: `config` is its saved config (AdaLIN, CAM, the VGG16 encoder) or recorded arguments, which also
    name the removed terms (on, the run would go on without them; off, 0, they are ignored)."""
    # runs begun without --init-from while the VGG16 encoder was an option recorded their own as None
    if reason := removed_switch(config.get("norm", "batch"), config.get("attention"), config.get("encoder") or "own"):
        raise SystemExit(reason)
    if on := [f"--{name.replace('_', '-')} {config[name]:g}" for name in REMOVED_TERMS if config.get(name)]:
        raise SystemExit(f"this run was recorded with {', '.join(on)}: the feature critics and likeness terms lost and were removed "
                         f"from the TwinGAN trainer (docs/twingan-experiments.md); commit {LAST_WITH_FEATURE_CRITICS_AND_LIKENESS} "
                         "still trains them")


def refuse_lost_trainer_switches(recorded: dict, whose: str = "this run was recorded with") -> None:
    """Stop a run that trained with a trainer switch since removed (`recorded`: its arguments): on, it would go on
    without it. Off or at the default, an older run's record of it is ignored."""
    on = [f"--nce-weight {recorded['nce_weight']:g}"] if recorded.get("nce_weight") else []
    if recorded.get("anime_framing", "raw") != "raw":
        on.append(f"--anime-framing {recorded['anime_framing']}")
    if (skips := recorded.get("skip_resolutions")) is not None and sorted(skips) != sorted(SKIP_RESOLUTIONS):
        on.append(f"--skip-resolutions {' '.join(map(str, skips))}")
    if on:
        raise SystemExit(f"{whose} {', '.join(on)}: switches that lost their arms have left the TwinGAN "
                         f"trainer (docs/twingan-experiments.md); commit {LAST_WITH_LOST_TRAINER_SWITCHES} still trains them")


def refuse_recorded_switches(payload: dict) -> None:
    """Stop a resume or export of a checkpoint or an export's training state whose recorded arguments name a
    removed switch on; a checkpoint from before they were recorded names only its feature critics' weight, and
    only when it had them."""
    recorded = {"feature_critic_weight": payload.get("feature_critic_weight", 0.0), **payload.get("args", {})}
    refuse_removed_switches(recorded)
    refuse_lost_trainer_switches(recorded)


def adopt_generator_config(args, config: dict) -> None:
    """Build the generator as a saved one is built (its `config`), whatever the size, colour and views flags say."""
    refuse_removed_switches(config)
    args.resolution, args.width, args.max_width = config["resolution"], config["width"], config["max_width"]
    args.skip_resolutions = list(config.get("skip_resolutions", SKIP_RESOLUTIONS))  # older saves name none
    args.colour_condition = bool(config.get("colour_classes"))
    args.domain_skips = bool(config.get("domain_skips"))


def build_models(args, device="cpu"):
    """The generator and the two critics, in the run's memory order."""
    generator = TwinGAN(**model_config(args))
    critic_width, critic_max_width = args.critic_width or args.width, args.critic_max_width or args.max_width
    scales = getattr(args, "critic_scales", 1)
    critics = nn.ModuleList((MultiScaleCritic(args.resolution, critic_width, critic_max_width, scales) if scales > 1
                             else Discriminator(args.resolution, critic_width, critic_max_width)) for _ in DOMAINS)
    return generator.to(device, memory_format=memory_format(args)), critics.to(device, memory_format=memory_format(args))


def checkpoint_generator(payload: dict, key: str = "ema") -> TwinGAN:
    """The generator (`key` "generator") or its moving average ("ema") from a checkpoint payload."""
    refuse_removed_switches(payload["config"])
    model = TwinGAN(**payload["config"])
    model.load_state_dict(payload[key])
    return model


def with_domain_skips(payload: dict) -> dict:
    """A checkpoint payload whose generator has no domain views of its skips, as one whose generator has them at
    the identity (a resume that adds them, `--domain-skips`): it translates exactly as saved. The generator's Adam
    moments follow its parameters to their new places (one parameter group, numbered in `parameters()` order, as the
    trainer builds it); the views have none, so Adam starts theirs at zero and moves them by about the rate from
    the first step."""
    before, config = TwinGAN(**payload["config"]), {**payload["config"], "domain_skips": True}
    after = TwinGAN(**config)
    saved = before.state_dict()
    views = {name: value for name, value in after.state_dict().items() if name not in saved}
    converted = {**payload, "config": config}
    for key in ("generator", "ema"):
        converted[key] = {**payload[key], **views}
    if "opt_g" in payload:
        (group,) = payload["opt_g"]["param_groups"]
        names = [name for name, _ in before.named_parameters()]
        place = {name: index for index, (name, _) in enumerate(after.named_parameters())}
        converted["opt_g"] = {"state": {place[names[int(index)]]: moments for index, moments in payload["opt_g"]["state"].items()},
                              "param_groups": [{**group, "params": list(range(len(place)))}]}
    return converted


def estimate_norm_statistics(model: TwinGAN, photo_batches, anime_batches, batches: int) -> TwinGAN:
    """Set every batch norm's running statistics to their mean over `batches` training passes of
    `model` itself, and return it in eval mode.

    In training each running estimate follows the raw generator's last few batches (momentum 0.1)
    and the moving average copies it, so the average is shipped with statistics of other weights,
    and noisy ones: every checkpoint translates a little differently for that alone.
    """
    device = next(model.parameters()).device

    def forward_pass():
        photos = next(photo_batches).to(device)
        drawn, drawn_colours = anime_batch(next(anime_batches), device)
        requested = random_colours(len(photos), device) if drawn_colours is not None else None
        translate_both_ways(model, photos, drawn, requested=requested, drawn_colours=drawn_colours)

    return measure_batchnorm_statistics(model, forward_pass, batches)


def with_own_statistics(model: TwinGAN, args) -> TwinGAN:
    """`model` in eval mode, its batch-norm statistics first estimated afresh (unless --norm-batches 0)."""
    if not args.norm_batches:
        return model.eval()
    set_threads(args.threads)
    return estimate_norm_statistics(model, *training_batches(args, model.resolution), args.norm_batches)


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
        "init_from": payload.get("init_from"), "freeze_norm_statistics": payload.get("frozen_statistics", False)}))
    adopt_generator_config(recorded, payload["config"])
    return with_training_data(recorded)


def exported_state(folder) -> dict:
    """An export's training state as the payload of the checkpoint it was written from, its extras from the
    arguments it recorded."""
    payload = read_training_state(folder)
    return {**payload, **checkpoint_extras(argparse.Namespace(**payload["args"]))}


def exported_generator(payload: dict, args) -> TwinGAN:
    """A checkpoint's EMA generator as `--export` writes it: with statistics of its own weights,
    estimated over the run's own data unless the flags say otherwise, or kept as trained if the run
    froze them."""
    model = checkpoint_generator(payload)
    if payload.get("frozen_statistics"):
        return model.eval()
    # statistics measured on portraits the run never saw would not be its own (`evaluate --run-dir` comes here)
    refuse_lost_trainer_switches(payload.get("training_data") or {})
    return with_own_statistics(model, with_training_data(args, payload.get("training_data")))


def export(args):
    """Write the run's EMA generator as a Hub model folder (config.json + model.safetensors), and beside it the
    training state `--resume-from` continues from (`cartoon.training_state`): the other models and the optimisers."""
    run = Run(args.run, main=False)
    if not run.checkpoint_path.is_file():
        raise SystemExit(f"no checkpoint at {run.checkpoint_path}")
    payload = run.read_checkpoint()
    refuse_recorded_switches(payload)
    exported_generator(payload, args).save_pretrained(args.export)
    # the run's own arguments, not this command's, built the models and go into training.json; but the statistics
    # written are this command's, so it records the batches they were estimated over (the harness checks them)
    recorded = recorded_args(payload, args)
    recorded.norm_batches = args.norm_batches
    generator, critics = build_models(recorded)
    modules = dict(generator=generator, critics=critics)
    # The most needed first: moments beyond the state's budget are left out in this order. Their
    # hyper-parameters come with their saved state.
    optimisers = {name: torch.optim.Adam(modules[models].parameters()) for name, models in (("opt_d", "critics"), ("opt_g", "generator"))}
    step = Run.restore(payload, **modules, **optimisers)
    written = export_training_state(args.export, step, recorded, **modules, **optimisers)
    left_out = f", {', '.join(written['moments_omitted'])} moments left out" if written["moments_omitted"] else ""
    print(f"exported step {step} EMA generator and training state ({written['state_bytes'] / 1e6:.1f} MB{left_out}) to {args.export}")


def recalibrate(args):
    """Re-estimate a saved model's batch-norm statistics, in place, over the data the flags name."""
    with_own_statistics(TwinGAN.from_pretrained(args.recalibrate), with_training_data(args)).save_pretrained(args.recalibrate)
    print(f"re-estimated the batch-norm statistics of {args.recalibrate} over {args.norm_batches} batches")
