"""The training state an export ships beside a model, so its training goes on on another machine.

A run's `checkpoint.pt` lives in `runs/`, which a new machine does not have. An export therefore
writes, next to the app's `config.json` and `model.safetensors` (the EMA generator):

    training_state.safetensors   every other model of the run (raw generator, critics) and, where
                                 they fit, the optimisers' moments, all in bfloat16
    training.json                the step, every argument (data folders included), the optimisers'
                                 hyper-parameters, and which moments were left out

`--resume-from FOLDER` reads them back into the shape `Run.restore` takes, so a resumed run
continues with the same critics, step count and schedule (every schedule here is a function of
the step). The app never reads these two files.

Why bfloat16 and a budget: the repository carries every shipped model, so the state may take at
most STATE_BUDGET times the shipped model's own bytes. Weights keep bfloat16's 8-bit mantissa —
the EMA that ships keeps full precision — and Adam's moments, which only scale steps, are the
first to go when they do not fit: a resumed Adam rebuilds them within a few hundred steps. With
β₁ ≤ 0.5 (every GAN here) the first moment keeps under 0.1% of a gradient ten steps on, so it is
never stored. Besides the budget, no state file may pass FILE_LIMIT: the repository's host
refuses files over 50 MB (TwinGAN's 5.5 M-parameter generator with two critics wrote 61.5 MB).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from cartoon.data import DATA_ROOT
from cartoon.training import Run

STATE_FILE = "training_state.safetensors"
ARGS_FILE = "training.json"
MODEL_FILE = "model.safetensors"
STATE_BUDGET = 3.0  # × the shipped model's bytes
FILE_LIMIT = 45_000_000  # bytes: under the host's 50 MB per file, with a margin
SHORT_MEMORY = 0.5  # Adam's β₁ at or below which the first moment is not worth storing
# Arguments that belong to a machine or an invocation, never carried from one run to the next.
NOT_CARRIED = {"run", "resume", "resume_from", "export", "device", "threads", "workers"}
# Recorded, so an export says how it trained, but not carried either: the precision is the machine's.
# bf16 and fp32 train alike (docs/training-speed.md), but bf16 is slow wherever the CPU only emulates
# it, so a run resumed on another machine takes that machine's default.
RECORDED_ONLY = {"precision"}
DATA_MARK = "$CARTOON_DATA"  # stands for cartoon.data.DATA_ROOT, which differs between machines


def _portable(value):
    """An argument as training.json records it: paths under the data root made machine-independent."""
    if isinstance(value, (list, tuple)):
        return [_portable(v) for v in value]
    if isinstance(value, (str, Path)):
        path = Path(value).resolve()
        if path.is_relative_to(DATA_ROOT.resolve()):
            return f"{DATA_MARK}/{path.relative_to(DATA_ROOT.resolve()).as_posix()}"
        return str(value)
    return value


def _local(value):
    """The inverse of `_portable` on this machine."""
    if isinstance(value, list):
        return [_local(v) for v in value]
    if isinstance(value, str) and value.startswith(DATA_MARK + "/"):
        return str(DATA_ROOT / value[len(DATA_MARK) + 1:])
    return value


def _stored(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.detach().cpu().contiguous()
    return tensor.to(torch.bfloat16) if tensor.is_floating_point() else tensor


def _module_tensors(name: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    module = module.module if hasattr(module, "module") else module  # DistributedDataParallel
    return {f"{name}/{key}": _stored(value) for key, value in module.state_dict().items()}


def _moment_tensors(name: str, optimiser: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    state = optimiser.state_dict()
    # parameter index → its group's first-moment decay
    beta1 = {index: group.get("betas", (1.0,))[0] for group in state["param_groups"] for index in group["params"]}
    tensors = {}
    for index, moments in state["state"].items():
        for key, value in moments.items():
            if key == "exp_avg" and beta1[index] <= SHORT_MEMORY:
                continue  # forgotten within a few steps of resuming
            tensors[f"{name}/state/{index}/{key}"] = value.detach().cpu().float() if key == "step" else _stored(value)
    return tensors


def _bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def export_training_state(folder: str | Path, step: int, args: argparse.Namespace, **state) -> dict:
    """Write STATE_FILE and ARGS_FILE into `folder`, beside its exported MODEL_FILE.

    `state` maps names to modules and optimisers, as `Run.save_checkpoint` takes them; the EMA
    generator is left out (it is MODEL_FILE). Returns what was written: sizes and left-out moments.
    """
    folder = Path(folder)
    shipped = (folder / MODEL_FILE).stat().st_size
    modules = {k: v for k, v in state.items() if isinstance(v, torch.nn.Module)}
    optimisers = {k: v for k, v in state.items() if isinstance(v, torch.optim.Optimizer)}
    tensors = {}
    for name, module in modules.items():
        tensors.update(_module_tensors(name, module))
    omitted = []
    for name, optimiser in optimisers.items():  # in the order given: the first ones matter most
        moments = _moment_tensors(name, optimiser)
        if _bytes(tensors) + _bytes(moments) <= min(STATE_BUDGET * shipped, FILE_LIMIT):
            tensors.update(moments)
        else:
            omitted.append(name)
    save_file(tensors, str(folder / STATE_FILE))
    record = {
        "step": step,
        "args": {k: _portable(v) for k, v in vars(args).items() if k not in NOT_CARRIED},
        "modules": sorted(modules),
        "optimisers": {name: opt.state_dict()["param_groups"] for name, opt in optimisers.items()},
        "moments_omitted": omitted,
        "state_bytes": _bytes(tensors),
        "model_bytes": shipped,
    }
    (folder / ARGS_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def export_run(args: argparse.Namespace, build_models, shippable) -> Path:
    """`--export`: RUN/checkpoint.pt's EMA generator, made `shippable(ema)`, as a `save_pretrained`
    folder at `args.export`, with the training state `--resume-from` continues from beside it.

    `build_models(args, device)` returns the run's modules and optimisers by name, "ema" among them.
    """
    payload = Run(args.run).read_checkpoint()
    # the run's own arguments, not this command's defaults, built the models and go into training.json
    recorded = Run.arguments(payload, args)
    models = build_models(recorded, "cpu")
    step = Run.restore(payload, **models)
    folder = Path(args.export)
    shippable(models["ema"]).save_pretrained(str(folder))
    written = export_training_state(folder, step, recorded, **{k: v for k, v in models.items() if k != "ema"})
    print(f"step {step} EMA generator and training state ({written['state_bytes'] / 1e6:.1f} MB) -> {folder}")
    return folder


def read_training_state(folder: str | Path, ema_key: str = "ema") -> dict:
    """An export's training state as a checkpoint payload: "step", "args" and one state dict per
    name (the EMA generator under `ema_key`, read from MODEL_FILE), for `Run.restore`."""
    folder = Path(folder)
    missing = [name for name in (ARGS_FILE, STATE_FILE, MODEL_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} has no training state to resume ({', '.join(missing)} missing): "
                                "only exports written since training state ships can be resumed")
    record = json.loads((folder / ARGS_FILE).read_text())
    tensors = load_file(str(folder / STATE_FILE))
    args = {k: _local(v) for k, v in record["args"].items()}
    payload: dict = {"step": int(record["step"]), "args": args, ema_key: load_file(str(folder / MODEL_FILE))}
    for name in record["modules"]:
        prefix = f"{name}/"
        payload[name] = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    for name, groups in record["optimisers"].items():
        payload[name] = {"state": _optimiser_moments(tensors, name, groups), "param_groups": groups}
    return payload


def _optimiser_moments(tensors: dict[str, torch.Tensor], name: str, groups: list[dict]) -> dict:
    moments: dict[int, dict] = {}
    prefix = f"{name}/state/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, moment = key[len(prefix):].split("/")
            moments.setdefault(int(index), {})[moment] = value.float()
    for index, values in moments.items():  # a first moment left out for its short memory
        if "exp_avg_sq" in values and "exp_avg" not in values:
            values["exp_avg"] = torch.zeros_like(values["exp_avg_sq"])
    return moments


def parse_resumable(parser: argparse.ArgumentParser, argv=None, checkpoint_defaults: bool = True) -> argparse.Namespace:
    """Parse `argv`, with the resumed run's arguments as the defaults: an export's recorded ones for
    `--resume-from FOLDER`, and with `checkpoint_defaults` those in RUN/checkpoint.pt for `--resume`.
    Flags given override them, so a resume needs none of the flags the run was started with."""
    args = parser.parse_args(argv)
    recorded = None
    if getattr(args, "resume_from", None) and getattr(args, "resume", False):
        parser.error("--resume continues RUN's own checkpoint and --resume-from an export: give one of them")
    if getattr(args, "resume_from", None):
        record_path = Path(args.resume_from) / ARGS_FILE
        if not record_path.is_file():
            parser.error(f"--resume-from {args.resume_from}: no {ARGS_FILE} there (an export written before training state shipped?)")
        recorded = json.loads(record_path.read_text())["args"]
    elif checkpoint_defaults and getattr(args, "resume", False):
        run = Run(args.run, main=False)
        if run.checkpoint_path.is_file():
            recorded = run.read_checkpoint().get("args", {})
    if recorded:
        known = set(vars(args))
        defaults = {k: _local(v) for k, v in recorded.items() if k in known and k not in NOT_CARRIED | RECORDED_ONLY}
        if "render_precision" in known and "render_precision" not in recorded and "precision" in recorded:
            defaults["render_precision"] = recorded["precision"]  # an avatar run from before it was its own flag
        parser.set_defaults(**defaults)
        args = parser.parse_args(argv)
    if getattr(args, "render_precision", "") is None:  # a run's start: its avatars draw as it trains
        args.render_precision = args.precision
    return args
