"""Within-pair diversity of avatars over all 120 colour pairs (20 faces each), the judge's colour
accuracy on the same faces, and the paired gap to v2 with a 95% bootstrap interval over pairs.
Seed 1, so its faces are not the evaluation's (seed 0): a second draw to read the noise of a first.

    python scripts/avatar_diversity.py FOLDER [GAMMA ...]     # NOISE=random for per-face noise

`GAMMA` pushes each w toward its pair's mean, w + γ (pair mean w − mean of all pair means), a
colour guidance that was tried and lost (docs/acgan-shipping.md). v2's per-pair figures are cached
in runs/acgan-v3/v2-pair-diversity.json.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.acgan import evaluate as ev  # noqa: E402

PER_PAIR = 20
V2_CACHE = Path("runs/acgan-v3/v2-pair-diversity.json")


@torch.no_grad()
def sample(generator, gamma: float, noise: str, seed: int = 1):
    if not ev.styled(generator):
        return ev.sample_every_pair(generator, PER_PAIR, seed)
    rng = torch.Generator().manual_seed(seed)
    hair = torch.arange(12).repeat_interleave(10 * PER_PAIR)
    eyes = torch.arange(10).repeat_interleave(PER_PAIR).repeat(12)
    z = torch.randn(len(hair), generator.latent_dim, generator=rng)
    shift = generator.pair_w_avg - generator.pair_w_avg.mean((0, 1))
    images = []
    for zs, h, e in zip(z.split(200), hair.split(200), eyes.split(200)):
        colours = generator.colours(h, e)
        w = generator.mapping(zs, colours) + gamma * shift[h, e]
        images.append(generator.synthesis(generator.styles(w, colours=colours), noise))
    return torch.cat(images), hair, eyes


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    distance, judge = ev.PerceptualDistance(), ev.load_classifier()
    noise = os.environ.get("NOISE", "fixed")
    v3 = ev.load_avatar_generator(sys.argv[1])
    readings = [(f"v3 γ={gamma} noise {noise}", v3, gamma) for gamma in map(float, sys.argv[2:] or ["0"])]
    results = {}
    if V2_CACHE.is_file():
        results["v2"] = {tuple(map(int, key.split(","))): value for key, value in json.loads(V2_CACHE.read_text()).items()}
    else:
        readings.insert(0, ("v2", ev.load_avatar_generator("weights/acgan"), 0.0))
    for name, generator, gamma in readings:
        images, hair, eyes = sample(generator, gamma, noise)
        hair_read, eyes_read = ev.classify(judge, images)
        accuracy = ev.summarise(hair_read, hair, eyes_read, eyes)
        results[name] = distance.pair_means(images, hair, eyes)
        if name == "v2":
            V2_CACHE.parent.mkdir(parents=True, exist_ok=True)
            V2_CACHE.write_text(json.dumps({f"{h},{e}": value for (h, e), value in results[name].items()}))
        print(f"{name}: diversity {np.mean(list(results[name].values())):.4f}, hair {accuracy['hair_mean']:.3f} (lowest {accuracy['hair_min']:.2f}), "
              f"eyes {accuracy['eyes_mean']:.3f} (lowest {accuracy['eyes_min']:.2f})", flush=True)
        weakest = sorted(accuracy["hair"].items(), key=lambda item: item[1])[:4]
        print("  weakest hair colours: " + ", ".join(f"{colour} {value:.0%}" for colour, value in weakest), flush=True)
    for name, values in results.items():
        if name != "v2":
            gap = ev.paired_difference(values, results["v2"], percentiles=(2.5, 97.5))
            print(f"{name} − v2: {gap['mean']:+.4f} (95% {gap['interval'][0]:+.4f} to {gap['interval'][1]:+.4f})")


if __name__ == "__main__":
    main()
