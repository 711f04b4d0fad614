"""Training and inference throughput of every model family, per precision and memory order.

    python bench/train_speed.py                      # every family, 2 threads, 5 rounds
    python bench/train_speed.py --only acgan --rounds 3 --compile

Each family's real training step (generator, critics and every loss term the shipped training
used, VGG and landmark terms included) and each app model's inference are timed in four
settings: fp32, bf16 autocast, channels-last, and both (`--compile` adds torch.compile on top of
the fastest precision with channels-last). Where the CPU only emulates bf16 (no AVX-512 BF16 or
AMX), its two settings are left out unless `--emulated` asks for them. The settings take turns
within every round, so a machine that slows down mid-run slows them all alike; each row gives the
median over rounds, the spread (min–max), images per second and the ratio to fp32 measured in the
same run. A data row gives the time to fetch one real training batch, as a share of the fastest
step. docs/training-speed.md keeps the figures.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.data import forever  # noqa: E402
from cartoon.runtime import cpu_has_bf16  # noqa: E402

SETTINGS = {  # name: (precision, channels_last)
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "channels-last": ("fp32", True),
    "bf16+channels-last": ("bf16", True),
}


def acgan_training(precision, channels_last, compiled=False, batch=32):
    from cartoon.acgan.train import build_models, parse_args, train_step

    args = parse_args(["--precision", precision, "--channels-last" if channels_last else "--no-channels-last"])
    models = build_models(args, "cpu")
    if compiled:
        models.update(generator=torch.compile(models["generator"]), discriminator=torch.compile(models["discriminator"]))
    real = torch.rand(batch, 3, 64, 64) * 2 - 1
    hair, eyes = torch.randint(0, 12, (batch,)), torch.randint(0, 10, (batch,))
    return (lambda: train_step(args, models, real, hair, eyes, 100)), batch


def whitebox_training(precision, channels_last, compiled=False, stage="train"):
    from cartoon.whitebox import pretrain, train

    flags = ["--precision", precision, "--channels-last" if channels_last else "--no-channels-last"]
    if stage == "pretrain":
        args = pretrain.parse_args(flags)
        generator, optimiser = pretrain.build_models(args, "cpu").values()
        generator = torch.compile(generator) if compiled else generator
        photo = torch.rand(args.batch_size, 3, args.size, args.size) * 2 - 1
        return (lambda: pretrain.reconstruction_step(args, generator, optimiser, photo)), args.batch_size
    args = train.parse_args(flags + ["--w-landmark", "1"])
    trainer = train.Trainer(args, "cpu")
    if compiled:
        trainer.g, trainer.ds, trainer.dt = (torch.compile(m) for m in (trainer.g, trainer.ds, trainer.dt))
    photo, cartoon = (torch.rand(args.batch_size, 3, args.size, args.size) * 2 - 1 for _ in range(2))
    return (lambda: trainer.step(photo, cartoon, 0)), args.batch_size


def twingan_training(precision, channels_last, compiled=False):
    from cartoon.twingan.data import with_training_data
    from cartoon.twingan.train import build_parser, train

    # the terms of the row docs/training-speed.md measured that the trainer still has (its feature critics and
    # likeness terms were removed): VGG content and the landmark term
    if compiled:
        raise NotImplementedError("the TwinGAN trainer builds its models inside the run")
    folder = tempfile.mkdtemp(prefix="twingan-speed-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # its checkpoints are tens of MB
    args = build_parser().parse_args([
        "--run-dir", folder, "--precision", precision, "--channels-last" if channels_last else "--no-channels-last",
        "--content-weight", "1", "--landmark-weight", "10", "--workers", "0", "--log-every", "1", "--sample-every", "100000",
        "--save-every", "100000", "--norm-batches", "0"])
    args = with_training_data(args)
    state = {"steps": 0}

    def one_step():  # a resumed run of one more step each time: the step's own time, from the trainer's log
        state["steps"] += 1
        with contextlib.redirect_stdout(io.StringIO()):
            train(argparse.Namespace(**{**vars(args), "steps": state["steps"], "resume": state["steps"] > 1}))
        return 1 / json.loads(Path(folder, "log.jsonl").read_text().splitlines()[-1])["it_per_s"]

    return one_step, args.batch_size


def whitebox_inference(precision, channels_last, compiled=False, side=512):
    from cartoon.hub import load_model

    model = load_model("whitebox", device="cpu", hub=False)
    photo = torch.rand(1, 3, side, side) * 2 - 1
    return inference(model, (photo,), precision, channels_last, compiled), 1


def twingan_inference(precision, channels_last, compiled=False, side=128):
    from cartoon.hub import load_model
    from cartoon.twingan.model import ANIME

    model = load_model("twingan", device="cpu", hub=False)
    face = torch.rand(1, 3, side, side) * 2 - 1
    return inference(model, (face, ANIME), precision, channels_last, compiled), 1


def acgan_inference(precision, channels_last, compiled=False, count=64):
    from cartoon.hub import load_model

    model = load_model("acgan", device="cpu", hub=False)
    noise, hair, eyes = torch.randn(count, model.noise_dim), torch.randint(0, 12, (count,)), torch.randint(0, 10, (count,))
    return inference(model, (noise, hair, eyes), precision, channels_last, compiled), count


def inference(model, inputs, precision, channels_last, compiled):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.eval().to(memory_format=fmt)
    model = torch.compile(model) if compiled else model
    inputs = [x.contiguous(memory_format=fmt) if torch.is_tensor(x) and x.dim() == 4 else x for x in inputs]

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            model(*inputs)

    return run


def data_loading(family):
    """Seconds to fetch one real training batch as the trainer does, and the batch size."""
    if family == "acgan":
        from cartoon.acgan.data import TaggedFaces, read_tags, split_tags
        from cartoon.acgan.train import parse_args

        args = parse_args([])
        dataset = TaggedFaces(split_tags(read_tags(args.data), args.held_out_per_pair)[0][:2000])
        batch = 32
    elif family == "whitebox":
        from cartoon.whitebox.data import image_dataset
        from cartoon.whitebox.train import parse_args

        args = parse_args([])
        dataset, batch = image_dataset(args.photos, args.size), args.batch_size
    else:
        from cartoon.twingan.data import face_dataset, with_training_data
        from cartoon.twingan.train import build_parser

        args = with_training_data(build_parser().parse_args([]))
        dataset, batch = face_dataset(args.photos, args.resolution), args.batch_size
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=0, drop_last=True)
    batches = forever(loader)
    next(batches)
    started = time.perf_counter()
    for _ in range(5):
        next(batches)
    return (time.perf_counter() - started) / 5


BENCHES = {
    "acgan": acgan_training,
    "whitebox-pretrain": lambda *setting: whitebox_training(*setting, stage="pretrain"),
    "whitebox": whitebox_training,
    "twingan": twingan_training,
    "whitebox inference 512²": whitebox_inference,
    "twingan inference 128²": twingan_inference,
    "acgan inference ×64": acgan_inference,
}


def measure(name, build, settings, rounds, warmup=2):
    steps, times = {}, {}
    for label, setting in settings.items():
        torch.manual_seed(0)
        try:
            work, images = build(*setting)
        except NotImplementedError as reason:
            print(f"  ({label}: not measured: {reason})")
            continue
        for _ in range(warmup):
            work()
        steps[label], times[label] = (work, images), []
    for _ in range(rounds):
        for label, (work, _) in steps.items():
            started = time.perf_counter()
            reported = work()
            times[label].append(reported if isinstance(reported, float) else time.perf_counter() - started)
    base = statistics.median(times["fp32"])
    print(f"\n{name}")
    for label, values in times.items():
        median = statistics.median(values)
        images = steps[label][1]
        print(f"  {label:<24} {median * 1000:8.1f} ms  ({min(values) * 1000:.0f}–{max(values) * 1000:.0f})"
              f"  {images / median:7.1f} img/s  ×{base / median:.2f} vs fp32")
    return {label: statistics.median(v) for label, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), help="bench these only")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also torch.compile the models in the fastest precision with channels-last")
    parser.add_argument("--emulated", action="store_true",
                        help="measure bf16 even where the CPU only emulates it (each step then takes minutes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    native = cpu_has_bf16()  # the bench runs on the CPU
    settings = {label: (*value, False) for label, value in SETTINGS.items() if native or args.emulated or value[0] == "fp32"}
    if args.compile:
        settings["compiled"] = ("bf16" if native else "fp32", True, True)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.rounds} rounds, CPU {torch.backends.cpu.get_cpu_capability()}, "
          f"bf16 {'native' if native else 'emulated' + ('' if args.emulated else ', not measured (--emulated measures it)')}")
    for name in args.only or BENCHES:
        fastest = min(measure(name, BENCHES[name], settings, args.rounds).values())
        family = name.split()[0].replace("-pretrain", "")
        if "inference" not in name and not name.endswith("pretrain"):
            seconds = data_loading(family)
            print(f"  data: one real batch {seconds * 1000:.1f} ms, {100 * seconds / fastest:.0f}% of the fastest step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
