"""Timing shared by the bench scripts (imported from beside them, like served.py)."""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def median_seconds(work, repeats: int) -> float:
    """Median wall time of `work()` over `repeats` calls, after one warm-up call.

    The warm-up pays for kernel selection and first allocations, which no later call repeats.
    """
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def print_report(rows: list[tuple[str, float, float | None]], source: str, repeats: int) -> None:
    """One line per (name, seconds, target or None), each also as a ratio to the first row, the
    reference measured in the same run, so runs on a busy or another machine compare."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"weights: {source}; torch threads: {torch.get_num_threads()}; load average: {load:.1f}; median of {repeats}")
    reference_seconds = rows[0][1]
    for name, seconds, target in rows:
        verdict = "" if target is None else f"  target < {target:g} s: {'met' if seconds < target else 'MISSED'}"
        print(f"{name:42s} {seconds:8.3f} s  ×{seconds / reference_seconds:5.2f} of reference{verdict}")


def generator_bench_args(doc: str, add_arguments=None) -> argparse.Namespace:
    """--repeats and --threads of a generator bench (threads applied at once); `add_arguments(parser)`
    adds a bench's own options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def shipped_or_random(name: str, model_class) -> tuple[torch.nn.Module, str]:
    """The registered model's shipped weights, else a random one of the same architecture (same cost)."""
    from cartoon.hub import shipped_folder

    folder = shipped_folder(name)
    if (folder / "model.safetensors").is_file():
        return model_class.from_pretrained(str(folder)).eval(), str(folder)
    return model_class().eval(), "random weights (same architecture; none shipped yet)"
