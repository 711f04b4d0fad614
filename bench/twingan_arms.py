"""Seconds per training step of TwinGAN's redesign arms at the ablation size, against the baseline in the same run.

    python bench/twingan_arms.py                          # 64², 1 thread, 5 rounds
    python bench/twingan_arms.py --size 96 --rounds 3 --threads 2

Each arm's real training step (`cartoon.twingan.train` on the project's data, the trainer's
defaults plus the arm's flags) is timed as the trainer logs it; the arms take turns within every
round, so a machine that slows down mid-run slows them all alike. Each row gives the median over
rounds, the spread, and the ratio to the baseline: what an arm of `python -m cartoon.twingan.ablate
--minutes M` buys in steps beside the baseline's.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ARMS = {
    "baseline": [],
    "critic-2-scales": ["--critic-scales", "2"],
    "width 16": ["--width", "16", "--max-width", "256"],
}


def arm_step(flags: list[str], size: int, threads: int):
    """A function that trains the arm one step more (a resumed run) and returns that step's seconds."""
    from cartoon.twingan.data import with_training_data
    from cartoon.twingan.train import build_parser, train

    folder = tempfile.mkdtemp(prefix="twingan-arm-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    args = with_training_data(build_parser().parse_args(flags + [
        "--run-dir", folder, "--resolution", str(size), "--threads", str(threads), "--workers", "0",
        "--log-every", "1", "--sample-every", "100000", "--save-every", "100000", "--norm-batches", "0"]))
    done = {"steps": 0}

    def step() -> float:
        done["steps"] += 1
        with contextlib.redirect_stdout(io.StringIO()):
            train(argparse.Namespace(**{**vars(args), "steps": done["steps"], "resume": done["steps"] > 1}))
        return 1 / json.loads(Path(folder, "log.jsonl").read_text().splitlines()[-1])["it_per_s"]

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=list(ARMS), help="these arms (the baseline is always timed)")
    args = parser.parse_args(argv)
    names = ["baseline"] + [name for name in (args.only or ARMS) if name != "baseline"]
    steps = {name: arm_step(ARMS[name], args.size, args.threads) for name in names}
    for step in steps.values():  # warm-up: the first steps build models and fill caches
        step(), step()
    times = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append(step())
    base = statistics.median(times["baseline"])
    print(f"TwinGAN arms at {args.size}², {args.threads} thread(s), median of {args.rounds} rounds")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<16} {median:6.3f} s/step  ({min(values):.3f}–{max(values):.3f})  {median / base:5.2f}× baseline")


if __name__ == "__main__":
    main()
