"""Latency and peak memory of the shipped white-box generator vs two reference generators.

The references are rebuilt from their papers with random weights (only their cost matters here):
  whitebox-original  Wang & Yu 2020's U-Net: 32 channels, 4 residual blocks, 7×7 outer convs,
                     followed by the same r=1 guided filter
  animeganv2         AnimeGANv2's generator: conv/norm/LReLU blocks, 4 inverted residual blocks
                     at 256 channels, bilinear upsampling, tanh

Each (model, size) runs in its own subprocess, so its peak resident memory (ru_maxrss) is its
own; the figure reported is the peak minus the process's resident memory before the first
inference (torch itself and the weights). Latency is the median of --repeats timed runs after
one warm-up. Ratios are ours / reference, measured in the same run.

Ours runs as `cartoon.whitebox.cartoonize` runs it: bf16 autocast and channels-last on CPUs with
native bf16 (`cartoon.runtime.inference_autocast`). The original is timed both in float32, as its
authors ship it, and with the same bf16 settings ("whitebox-original-bf16"), so the ratio that
matters cannot come from the settings alone.

    python bench/cartoonize.py                  # 256², 512², 1024², 1 thread
    python bench/cartoonize.py --threads 2 --repeats 7 --weights weights/whitebox
    python bench/cartoonize.py --sizes 512 --channels 16   # an untrained generator of another width
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.whitebox.guided_filter import guided_filter  # noqa: E402
from cartoon.runtime import cpu_has_bf16, inference_autocast  # noqa: E402
from cartoon.whitebox.model import Generator  # noqa: E402


def lrelu():
    return nn.LeakyReLU(0.2, inplace=True)


class OriginalWhiteBox(nn.Module):
    """Wang & Yu 2020 generator: U-Net, 32 channels, 4 residual blocks, then the guided filter."""

    def __init__(self, c: int = 32, blocks: int = 4):
        super().__init__()

        def conv(i, o, k=3, s=1):
            return nn.Conv2d(i, o, k, s, k // 2)

        self.stem = nn.Sequential(conv(3, c, 7), lrelu())
        self.down1 = nn.Sequential(conv(c, c, s=2), lrelu(), conv(c, 2 * c), lrelu())
        self.down2 = nn.Sequential(conv(2 * c, 2 * c, s=2), lrelu(), conv(2 * c, 4 * c), lrelu())
        self.blocks = nn.ModuleList(nn.Sequential(conv(4 * c, 4 * c), lrelu(), conv(4 * c, 4 * c)) for _ in range(blocks))
        self.reduce = nn.Sequential(conv(4 * c, 2 * c), lrelu())
        self.up1 = nn.Sequential(conv(2 * c, 2 * c), lrelu(), conv(2 * c, c), lrelu())
        self.head = nn.Sequential(conv(c, c), lrelu(), conv(c, 3, 7))

    def forward(self, photo):
        full = self.stem(photo)
        half = self.down1(full)
        x = self.down2(half)
        for block in self.blocks:
            x = x + block(x)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        half = self.up1(half + up(self.reduce(x)))
        return guided_filter(photo, self.head(full + up(half)), 1, 5e-3)


class ConvNormLReLU(nn.Sequential):
    def __init__(self, i, o, k=3, s=1, groups=1):
        pad = k // 2
        super().__init__(
            nn.ReflectionPad2d(pad if s == 1 else (0, 1, 0, 1)),
            nn.Conv2d(i, o, k, s, groups=groups, bias=False),
            nn.GroupNorm(1, o),
            lrelu(),
        )


class InvertedResidual(nn.Module):
    def __init__(self, i, o, expansion=2):
        super().__init__()
        hidden = i * expansion
        self.residual = i == o
        self.body = nn.Sequential(
            ConvNormLReLU(i, hidden, k=1),
            ConvNormLReLU(hidden, hidden, groups=hidden),
            nn.Conv2d(hidden, o, 1, bias=False),
            nn.GroupNorm(1, o),
        )

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class AnimeGANv2(nn.Module):
    """AnimeGANv2 generator (Chen et al. 2020, v2 release)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(ConvNormLReLU(3, 32, k=7), ConvNormLReLU(32, 64, s=2), ConvNormLReLU(64, 64))
        self.b = nn.Sequential(ConvNormLReLU(64, 128, s=2), ConvNormLReLU(128, 128))
        self.c = nn.Sequential(
            ConvNormLReLU(128, 128),
            InvertedResidual(128, 256),
            *[InvertedResidual(256, 256) for _ in range(3)],
            ConvNormLReLU(256, 128),
        )
        self.d = nn.Sequential(ConvNormLReLU(128, 128), ConvNormLReLU(128, 128))
        self.e = nn.Sequential(ConvNormLReLU(128, 64), ConvNormLReLU(64, 64), ConvNormLReLU(64, 32, k=7))
        self.out = nn.Sequential(nn.Conv2d(32, 3, 1, bias=False), nn.Tanh())

    def forward(self, photo):
        half = self.a(photo)
        x = self.c(self.b(half))
        x = self.d(F.interpolate(x, size=half.shape[-2:], mode="bilinear", align_corners=True))
        x = self.e(F.interpolate(x, size=photo.shape[-2:], mode="bilinear", align_corners=True))
        return self.out(x)


# the models timed with cartoon.whitebox's inference settings (bf16 autocast, channels-last)
DEPLOYED_IN_BF16 = {"ours", "whitebox-original-bf16"}


def build(name: str, weights: str | None, channels: int) -> nn.Module:
    if name == "ours":
        if channels:
            return Generator(channels=channels)
        return Generator.from_pretrained(weights) if weights and Path(weights, "model.safetensors").is_file() else Generator()
    return {"whitebox-original": OriginalWhiteBox, "whitebox-original-bf16": OriginalWhiteBox, "animeganv2": AnimeGANv2}[name]()


def measure(name: str, size: int, repeats: int, threads: int, weights: str | None, channels: int) -> dict:
    """Runs inside the child process."""
    torch.set_num_threads(threads)
    model = build(name, weights, channels).eval()
    photo = torch.rand(1, 3, size, size) * 2 - 1
    low_precision = name in DEPLOYED_IN_BF16
    if low_precision:
        model, photo = model.to(memory_format=torch.channels_last), photo.contiguous(memory_format=torch.channels_last)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    with torch.inference_mode(), inference_autocast(photo.device, enabled=low_precision):
        model(photo)
        for _ in range(repeats):
            start = time.perf_counter()
            model(photo)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = sum(p.numel() for p in model.parameters())
    return {"seconds": statistics.median(times), "peak_mb": (peak - before) / 1024, "params": params}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", default=str(Path(__file__).resolve().parent.parent / "weights" / "whitebox"))
    parser.add_argument("--channels", type=int, default=0, help="time an untrained generator of this width instead of --weights")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.repeats, args.threads, args.weights, args.channels)))
        return

    models = ["ours", "whitebox-original", "whitebox-original-bf16", "animeganv2"]
    ours = f"untrained, {args.channels} channels" if args.channels else args.weights
    print(f"ours: {ours}; bf16 + channels-last: {'yes' if cpu_has_bf16() else 'no (this CPU has no native bf16)'}")
    print(f"CPU inference, batch 1, {args.threads} thread(s), median of {args.repeats}; memory = peak RSS growth during inference")
    header = f"{'size':>6} {'model':<22} {'params':>9} {'latency':>9} {'peak MB':>8} {'time ratio':>11} {'mem ratio':>10}"
    print(header)
    for size in args.sizes:
        results = {}
        for name in models:
            command = [sys.executable, __file__, "--child", name, str(size), "--repeats", str(args.repeats),
                       "--threads", str(args.threads), "--weights", args.weights, "--channels", str(args.channels)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[name] = json.loads(output.strip().splitlines()[-1])  # the Hub mixin may print first
        ours = results["ours"]
        for name in models:
            r = results[name]
            ratio = "" if name == "ours" else f"{ours['seconds'] / r['seconds']:>11.2f} {ours['peak_mb'] / max(r['peak_mb'], 1e-6):>10.2f}"
            print(f"{size:>5}² {name:<22} {r['params']:>9,} {r['seconds'] * 1000:>7.0f}ms {r['peak_mb']:>8.0f} {ratio}")
    print("time/mem ratio = ours ÷ reference (below 1: ours is faster / smaller). Target at 512²: time ratio ≤ 0.33 vs whitebox-original.")


if __name__ == "__main__":
    main()
