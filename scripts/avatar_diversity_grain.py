"""Does the avatar evaluation's within-pair diversity pass a repeated face with grain on it? (Issue
43 asks for a figure a repeated face cannot pass.) One real face repeated ten times with
independent noise, against ten real faces of a pair, on the evaluation's 12 pairs; and how much
grain v2, a v3 folder and real faces carry (the std of an image minus its σ-1 blur).

    python scripts/avatar_diversity_grain.py V3_FOLDER
"""

import sys
from pathlib import Path

import torch
from torchvision.transforms.functional import gaussian_blur

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.acgan import evaluate as ev  # noqa: E402
from cartoon.acgan.data import TaggedFaces, read_tags, split_tags  # noqa: E402
from cartoon.data import ANIME_TAGS  # noqa: E402

PAIRS = [(h, (h * 7 + 3) % 10) for h in range(12)]  # the evaluation's diversity pairs


def grain(images: torch.Tensor) -> float:
    return float((images - gaussian_blur(images, 5, 1.0)).std())


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    held = TaggedFaces(split_tags(read_tags(ANIME_TAGS))[1])
    distance = ev.PerceptualDistance()

    def figure(sets):
        return sum(distance.mean_pairwise(x) for x in sets) / len(sets)

    real = [held.images[(held.hair == h) & (held.eyes == e)][:10].float() / 127.5 - 1 for h, e in PAIRS]
    real = [faces for faces in real if len(faces) > 1]
    print(f"real faces: diversity {figure(real):.3f}, grain {grain(torch.cat(real)):.4f}")
    for sigma in (0.02, 0.05, 0.1):
        repeated = [faces[:1].repeat(10, 1, 1, 1) + sigma * torch.randn(10, *faces.shape[1:]) for faces in real]
        print(f"one real face ×10 + noise σ {sigma}: diversity {figure(repeated):.3f}, grain {grain(torch.cat(repeated)):.4f}")
    for name, folder in (("v2", "weights/acgan"), ("v3", sys.argv[1])):
        with torch.no_grad():
            images, hair, eyes = ev.sample_every_pair(ev.load_avatar_generator(folder), 10)
        generated = [images[(hair == h) & (eyes == e)] for h, e in PAIRS]
        print(f"{name}: diversity {figure(generated):.3f}, grain {grain(torch.cat(generated)):.4f}")


if __name__ == "__main__":
    main()
