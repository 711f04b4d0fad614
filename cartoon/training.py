"""What every training script here shares: arguments, `torchrun`, stop signals, checkpoints, logs and
grids, and the bookkeeping of GAN training (averaged weights, decaying rates, the hinge loss).
Image folders and endless batches are `cartoon.data`'s.

A run lives in one folder (`runs/<name>` by default, ignored by git):
    checkpoint.pt   latest full training state (models, optimisers, step), for `--resume`
    log.jsonl       one JSON object per logged step: losses and metrics
    samples/        sample grids, `step_000500.png`, …
Only the training state is a pickle, and it is only ever read from a run folder the user named.
Models are exported with `save_pretrained` (safetensors + config) for shipping.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from torchvision.utils import save_image

from cartoon.runtime import PRECISIONS, cpu_has_bf16


def native_precision() -> str:
    """The fastest precision this machine trains in: bf16 where it is native, fp32 where autocast would
    only emulate it (an AVX2 CPU ran the cartoonizer's training step in bf16 18× slower than in fp32)."""
    return "bf16" if torch.cuda.is_available() or cpu_has_bf16() else "fp32"


def add_render_precision_arg(parser: argparse.ArgumentParser) -> None:
    """The avatar trainers' `--render-precision`: unlike `--precision`, a property of the model, not
    the machine. `cartoon.training_state.parse_resumable` sets it at a run's start and carries it."""
    parser.add_argument("--render-precision", choices=PRECISIONS,
                        help="how the exported generator draws avatars, part of what their recipes' pixels are: "
                             "default the --precision the run started in, kept by every resume whatever the machine")


def add_common_args(parser: argparse.ArgumentParser, default_run: str) -> argparse.ArgumentParser:
    """Flags every training script takes, with the same names and meanings."""
    # not "--run": torchrun reads that as an abbreviation of its own --run-path, even after the module
    parser.add_argument("--run-dir", dest="run", default=f"runs/{default_run}", help="run folder: checkpoints, logs, sample grids")
    parser.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt; the run's own arguments are "
                        "the defaults, flags given here override them (TwinGAN: sizes and data only, see its trainer)")
    parser.add_argument("--resume-from", metavar="FOLDER",
                        help="continue the training an export wrote to FOLDER (training.json + training_state.safetensors), "
                             "in a new --run-dir; its arguments are the defaults, flags given here override them")
    # bench/train_speed.py measured each family; docs/training-speed.md has the figures behind the defaults
    parser.add_argument("--precision", choices=PRECISIONS, default=native_precision(),
                        help="bf16: autocast matmuls and convolutions to bfloat16 (weights and optimiser stay fp32); "
                             "default: bf16 on a GPU or a CPU that computes it natively, else fp32; a resumed run also takes this machine's default")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                        help="keep images and conv weights in channels-last (NHWC) memory order")
    parser.add_argument("--steps", type=int, default=10000, help="total optimiser steps")
    parser.add_argument("--batch-size", type=int, default=16, help="per process")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--lr-decay-from", type=int, metavar="STEP",
                        help="from STEP every learning rate falls linearly to 0 at --steps (default: constant)")
    parser.add_argument("--workers", type=int, default=2, help="data-loading processes")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return parser


class Distributed:
    """Rank/world bookkeeping that is a no-op without `torchrun`."""

    def __init__(self, device: str):
        self.enabled = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if self.enabled:
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            torch.cuda.set_device(self.local_rank)
            device = f"cuda:{self.local_rank}"
        self.device = torch.device(device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if not self.enabled:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)

    def loader(self, dataset, batch_size: int, workers: int, seed: int) -> DataLoader:
        sampler = DistributedSampler(dataset, self.world, self.rank, shuffle=True, seed=seed) if self.enabled else None
        # The shuffle follows `seed` alone, not however many draws building the models took.
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=torch.Generator().manual_seed(seed),
            num_workers=workers,
            drop_last=len(dataset) >= batch_size,
            persistent_workers=workers > 0,
            worker_init_fn=ignore_stop_signals,
        )

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            value = value.detach().clone()
            dist.all_reduce(value)
            value /= self.world
        return value

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank: a decision every rank must take alike."""
        if not self.enabled:
            return flag
        value = torch.tensor(float(flag), device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value)

    def close(self):
        if self.enabled:
            dist.destroy_process_group()


def ignore_stop_signals(worker_id: int = 0):
    """A DataLoader worker's `worker_init_fn`: SIGTERM and SIGINT are the training loop's to handle
    (`StopRequest`). A worker they reached (a process-group kill, `pkill -f`, torchrun stopping its
    ranks) would otherwise die, and its loader would fail the step before it is checkpointed."""
    for number in StopRequest.SIGNALS:
        signal.signal(number, signal.SIG_IGN)


class StopRequest:
    """`kill` (SIGTERM) or Ctrl-C (SIGINT) asks a training loop to finish its step, save a checkpoint
    and stop, so a stopped run resumes at the step it stopped at rather than at its last periodic
    save. The process then exits with the signal's status (128 + its number), so what is chained
    after the training with `&&` (an evaluation, an export) does not take the stopped run for a
    finished one. A second signal stops at once. A signal the process was started ignoring (SIGINT
    for a shell's background job) stays ignored. Under `torchrun` every rank stops at the same step.

        with StopRequest(dist) as stop_requested:
            while step < args.steps:
                ...
                stopped = stop_requested()
                ...  # log and checkpoint when stopped, then break
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, distributed: Distributed | None = None):
        self.distributed = distributed
        self.number = None  # the signal received here, if any
        self.stopped = False  # whether the loop was told to stop: under torchrun, also when another rank was signalled
        self._told = False
        self._previous: dict = {}

    def __enter__(self) -> "StopRequest":
        # Python sets handlers from the main thread only; elsewhere a loop runs as it did without one
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                if signal.getsignal(number) is not signal.SIG_IGN:
                    self._previous[number] = signal.signal(number, self._ask)
        return self

    def __exit__(self, kind, value, traceback):
        self._restore()
        # a signal after the loop's last look at it came during the final step's saves: those are done
        if (self.number is not None or self.stopped) and kind is None:
            print("stopped with a checkpoint; --resume goes on from it", flush=True)
            raise SystemExit(128 + (self.number or signal.SIGTERM))  # a rank not signalled itself exits as if killed

    def _restore(self):
        for number, handler in self._previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        self._previous = {}

    def _ask(self, number, frame):
        # only a flag here: printing from a handler can interrupt a print already under way
        if self.number is not None:  # asked twice: whatever the signal did before, now
            self._restore()
            signal.raise_signal(number)
            return
        self.number = number

    def __call__(self) -> bool:
        asked = self.number is not None
        if asked and not self._told:
            self._told = True
            print(f"\n{signal.Signals(self.number).name}: stopping after this step with a checkpoint; "
                  "send it again to stop at once", flush=True)
        self.stopped = self.distributed.any(asked) if self.distributed is not None else asked
        return self.stopped


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: int):
    if threads > 0:
        torch.set_num_threads(threads)


def autocast(args: argparse.Namespace, device) -> torch.autocast:
    """The forward passes' precision context: bf16 autocast when `--precision bf16`, else a no-op."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=args.precision == "bf16")


def memory_format(args: argparse.Namespace) -> torch.memory_format:
    """The memory order `--channels-last` asks for, for conv models and 4-d image batches."""
    return torch.channels_last if args.channels_last else torch.contiguous_format


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if hasattr(module, "module") else module


class Run:
    """A run folder: checkpoint, JSON-lines log and sample grids (written by rank 0 only)."""

    def __init__(self, folder: str | Path, main: bool = True):
        self.folder = Path(folder)
        self.main = main
        if main:
            (self.folder / "samples").mkdir(parents=True, exist_ok=True)
        self.started = time.time()

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / "checkpoint.pt"

    def save_checkpoint(self, step: int, **state):
        if not self.main:
            return
        payload = {"step": step}
        for key, value in state.items():
            payload[key] = unwrap(value).state_dict() if hasattr(value, "state_dict") else value
        temporary = self.checkpoint_path.with_suffix(".tmp")
        torch.save(payload, temporary)
        temporary.replace(self.checkpoint_path)  # never leave a half-written checkpoint behind

    def read_checkpoint(self, map_location="cpu") -> dict:
        """The run's checkpoint payload: "step" and a state dict (or plain value) per saved name."""
        # weights_only=True: a training checkpoint holds tensors, numbers and plain containers only.
        return torch.load(self.checkpoint_path, map_location=map_location, weights_only=True)

    def load_checkpoint(self, map_location, **state) -> int:
        """Restore `state` objects in place from the run's checkpoint; returns the step reached."""
        return self.restore(self.read_checkpoint(map_location), **state)

    @staticmethod
    def arguments(payload: dict, args: argparse.Namespace) -> argparse.Namespace:
        """The arguments a checkpoint's run trained with (saved as "args"); `args`, this command's,
        stand for any it did not record. Exports build and describe the run's models from these."""
        return argparse.Namespace(**{**vars(args), **payload.get("args", {})})

    @staticmethod
    def restore(payload: dict, **state) -> int:
        """Restore `state` objects in place from a checkpoint payload; returns its step.

        Optimisers keep the learning rates they were built with: a resumed run trains at the rates
        its flags ask for (`--lr`), not the ones saved with its moments."""
        for key, value in state.items():
            if key in payload and hasattr(value, "load_state_dict"):
                target = unwrap(value)
                optimiser = isinstance(target, torch.optim.Optimizer)
                rates = [group["lr"] for group in target.param_groups] if optimiser else []
                target.load_state_dict(payload[key])
                if optimiser:
                    for group, lr in zip(target.param_groups, rates):
                        group["lr"] = lr
        return int(payload["step"])

    def log(self, step: int, **values):
        if not self.main:
            return
        record = {"step": step, "seconds": round(time.time() - self.started, 1)}
        # five significant digits, not decimals: a decaying learning rate of 1e-5 must not log as 0
        record.update({k: float(f"{float(v):.5g}") for k, v in values.items()})
        with open(self.folder / "log.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def save_grid(self, step: int, images: torch.Tensor, rows: int):
        if self.main:
            save_image(images.detach().float().cpu() * 0.5 + 0.5, self.folder / "samples" / f"step_{step:06d}.png", nrow=rows)


@contextmanager
def evaluating(*modules: torch.nn.Module):
    """Put modules in eval mode and no-grad for a sample, then restore their modes."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


@torch.no_grad()
def measure_batchnorm_statistics(model: torch.nn.Module, forward_pass, batches: int) -> torch.nn.Module:
    """Set every batch norm's running statistics in `model` to their mean over `batches` calls of
    `forward_pass()` in training mode, and return `model` in eval mode.

    A moving average of weights copies the live model's running statistics, which belong to other
    weights; measuring them on the average's own weights makes its outputs match its weights.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:  # per-image normalisation: nothing to measure
        return model.eval()
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative mean over every batch from here
    model.train()
    for _ in range(batches):
        forward_pass()
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return model.eval()


def hinge_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic's hinge loss: real scores pushed above 1, generated ones below -1."""
    return torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float):
    """Exponential moving average of weights; buffers (batch-norm statistics) are copied."""
    for target, source in zip(ema.parameters(), unwrap(model).parameters()):
        target.lerp_(source.detach(), 1 - decay)
    for target, source in zip(ema.buffers(), unwrap(model).buffers()):
        target.copy_(source)


def linear_decay(step: int, start: int | None, end: int) -> float:
    """Learning-rate factor: 1 until `start`, then falling linearly to 0 at `end` (CycleGAN's schedule).

    A function of the step alone, so a resumed run lands on the same rate without saving a scheduler."""
    if start is None or step < start:
        return 1.0
    return max(0.0, (end - step) / max(1, end - start))


class DecayingRates:
    """`rates(step)` sets every optimiser among `objects` to the rate it had here times
    `linear_decay(step, start, end)`, and returns that factor (for the log).

    Built after the optimisers are (and restored: `Run.restore` keeps their rates), it reads the
    rates the run's flags gave them, so a resumed run decays from those."""

    def __init__(self, objects, start: int | None, end: int):
        optimisers = [unwrap(o) for o in objects if isinstance(unwrap(o), torch.optim.Optimizer)]
        self.groups = [(group, group["lr"]) for optimiser in optimisers for group in optimiser.param_groups]
        self.start, self.end = start, end

    def __call__(self, step: int) -> float:
        factor = linear_decay(step, self.start, self.end)
        for group, lr in self.groups:
            group["lr"] = lr * factor
        return factor
