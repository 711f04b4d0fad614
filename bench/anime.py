"""TwinGAN translation latency, and look-alike search latency over a 10,000-image gallery.

Translation: TwinGAN in the shipped configuration (weights/twingan/config.json: widths, skips) at
128², its trained size, and the same architecture at 256²,
against CycleGAN's ResNet-9 generator (64 channels, the selfie2anime baseline) at the same sizes,
rebuilt with random weights: only the cost matters. Median of --repeats runs after a warm-up.

Search: 10,000 synthetic L2-normalised embeddings of the shipped TwinGAN's width; hnswlib (cosine,
M=16, ef=64, one thread) against exact brute-force numpy search (one matrix-vector product and a
partial sort), with hnswlib's recall@k against the exact answer. Embedding the gallery itself is
a one-off cost cached on disk (see `cartoon.twingan.gallery`) and is not part of a query.

    python bench/anime.py                 # 1 thread
    python bench/anime.py --threads 2 --repeats 7 --json bench_anime.json
    python bench/anime.py --width 16 --max-width 256   # a wider design, before training it
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import hnswlib
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.hub import shipped_folder  # noqa: E402
from cartoon.twingan.model import ANIME, TwinGAN  # noqa: E402
from timing import median_seconds  # noqa: E402


class CycleGANResNet(nn.Module):
    """Zhu et al. 2017 generator: 7×7 stem, two stride-2 convs, 9 residual blocks, two up-convs."""

    def __init__(self, ngf: int = 64, blocks: int = 9):
        super().__init__()

        def norm_relu(channels):
            return [nn.InstanceNorm2d(channels), nn.ReLU(True)]

        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), *norm_relu(ngf)]
        for scale in (1, 2):
            layers += [nn.Conv2d(ngf * scale, ngf * scale * 2, 3, 2, 1), *norm_relu(ngf * scale * 2)]
        self.down = nn.Sequential(*layers)
        width = ngf * 4
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), *norm_relu(width), nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width))
            for _ in range(blocks)
        )
        layers = []
        for scale in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * scale, ngf * scale // 2, 3, 2, 1, output_padding=1), *norm_relu(ngf * scale // 2)]
        self.up = nn.Sequential(*layers, nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh())

    def forward(self, x):
        x = self.down(x)
        for block in self.blocks:
            x = x + block(x)
        return self.up(x)


@torch.no_grad()
def translation(config: dict, sizes, repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        torch.manual_seed(0)
        ours = TwinGAN(**{**config, "resolution": size}).eval()
        reference = CycleGANResNet().eval()
        image = torch.rand(1, 3, size, size) * 2 - 1
        ours_s = median_seconds(lambda: ours(image, ANIME), repeats)
        reference_s = median_seconds(lambda: reference(image), repeats)
        rows.append({"size": size, "twingan_ms": ours_s * 1e3, "cyclegan_ms": reference_s * 1e3, "ratio": ours_s / reference_s,
                     "twingan_params_m": sum(p.numel() for p in ours.parameters()) / 1e6})
    return rows


def search(count: int, dim: int, k: int, queries: int, threads: int) -> dict:
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((count, dim)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    probes = gallery[rng.choice(count, queries, replace=False)] + 0.3 * rng.standard_normal((queries, dim)).astype(np.float32) / np.sqrt(dim)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)

    start = time.perf_counter()
    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=count, ef_construction=200, M=16, random_seed=0)
    index.add_items(gallery, np.arange(count), num_threads=threads)
    index.set_ef(64)
    build_s = time.perf_counter() - start

    def exact(query):
        distances = 1 - gallery @ query
        nearest = np.argpartition(distances, k)[:k]
        return nearest[np.argsort(distances[nearest])]

    found = [index.knn_query(q[None], k=k, num_threads=1)[0][0] for q in probes]
    truth = [exact(q) for q in probes]
    recall = np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)])
    hnsw_s = median_seconds(lambda: [index.knn_query(q[None], k=k, num_threads=1) for q in probes], 3) / queries
    brute_s = median_seconds(lambda: [exact(q) for q in probes], 3) / queries
    return {"gallery": count, "dim": dim, "k": k, "hnsw_build_s": build_s, "hnsw_query_ms": hnsw_s * 1e3, "brute_force_query_ms": brute_s * 1e3,
            "ratio": hnsw_s / brute_s, f"hnsw_recall_at_{k}": float(recall)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--gallery", type=int, default=10_000)
    parser.add_argument("--width", type=int, help="channels at full resolution (default: the shipped model's)")
    parser.add_argument("--max-width", type=int, help="widest layer (default: the shipped model's)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = json.loads((shipped_folder("twingan") / "config.json").read_text())
    config.update({key: value for key, value in (("width", args.width), ("max_width", args.max_width)) if value is not None})
    results = {"threads": args.threads, "translation": translation(config, args.sizes, args.repeats),
               "search": search(args.gallery, TwinGAN(**config).embedding_size, 8, 200, args.threads)}
    print(f"Translation, 1 image, {args.threads} thread(s), median of {args.repeats}:")
    print("| size | TwinGAN ms | CycleGAN ResNet-9 ms | ratio (TwinGAN / CycleGAN) |\n|---|---|---|---|")
    for row in results["translation"]:
        print(f"| {row['size']}² | {row['twingan_ms']:.0f} | {row['cyclegan_ms']:.0f} | {row['ratio']:.2f} |")
    s = results["search"]
    print(f"\nSearch over {s['gallery']:,} embeddings (dim {s['dim']}), k={s['k']}, per query:")
    print("| method | ms | ratio (hnswlib / brute force) | recall |\n|---|---|---|---|")
    print(f"| hnswlib (build {s['hnsw_build_s']:.1f} s once) | {s['hnsw_query_ms']:.3f} | {s['ratio']:.2f} | {s['hnsw_recall_at_8']:.3f} |")
    print(f"| brute-force numpy | {s['brute_force_query_ms']:.3f} | 1.00 | 1.000 |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
