"""Directions in w for the Latent Lab: one per hair and eye colour, and SeFa's unsupervised ones.

Colour directions follow GANInterface: draw N faces, let the avatar evaluation's colour
classifier tag them, and take the mean w of the faces with a colour minus the mean w of all
(`hair-blue`, `eyes-red`, …), whitened by w's covariance (`whitened_direction`): w varies about
60× more along its strongest axes (layout) than along its median one, so the raw difference is
mostly those axes and their sampling noise. Measured on the step-7,000 export, whitening took
32 faces moved along hair-blue by amount 2 from 66% to 91% read blue, eyes-green from 72% to 89%.
Amount 1 moves the classifier-separating score as far as the whole raw difference does.

Eye colours are not found that way from recipe version 2 on (`eye_directions`): in the tagged
faces eye colour goes with hair colour, so the mean difference for blue eyes is mostly blue hair
(at amount 2 it recoloured the hair of most faces and read blue eyes on only 62% of the check's).
Instead each eye colour's logit is differentiated, over 1,000 faces, with respect to the styles
of every layer separately, the hair logits' mean gradients are projected out (so, to first order,
the step leaves the hair as the classifier reads it), and amount 1 raises the eye logit by
EYE_LOGIT_STEP. Most of the step lands on the 64² block's styles (7–9), where colour is drawn. Such a
direction is (num_ws, latent_dim), one row per style; the others are one w for every style.

SeFa (Shen & Zhou 2021) needs no faces: a step n in w changes the styles by A·n, where A stacks
every style layer's weights, so the directions that change the styles most are the top
eigenvectors of AᵀA (`sefa0` the strongest). Each is scaled to one standard deviation of w along
it, so its amounts read in standard deviations.

Both kinds are cached on disk under a fingerprint of the weights they came from (and of the
classifier, for colours): new weights get new directions, old ones are never reused. Files with
the same names shipped in the weights folder's `directions/` are read first.

    python -m cartoon.stylegan.directions --check       # issue 42's test: 32 faces moved along hair-blue, …
    python -m cartoon.stylegan.directions --weights weights/stylegan --ship weights/stylegan   # ship them too
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.stylegan.model import Generator, ModulatedConv
from cartoon.vgg import cache_dir

TAG_SAMPLES = 2000
TAG_SEED = 0
RIDGE = 1.0  # added to w's covariance before whitening, in units of its mean variance: keeps the weakest axes from dominating
SEFA_COUNT = 10
SEFA_DIRECTIONS = tuple(f"sefa{k}" for k in range(SEFA_COUNT))  # their names in recipes, strongest first
EYE_SAMPLES = 1000
EYE_LOGIT_STEP = 2.0  # amount 1 of an eye direction raises its colour's logit by this much, to first order
EYE_GRADIENTS_FROM = 2  # recipes of this version on move eye colours by eye_directions; older ones keep the whitened ones
DEFAULT_AMOUNT = {"tag": 2.0, "eyes": 2.0, "sefa": 3.0}
CLASSIFIER_SIDE = 64  # the colour classifier reads 64×64 faces
CHECK_TAGS = ("hair-blue", "hair-blonde", "hair-pink", "eyes-red", "eyes-green")
CHECK_SEED = 1_000_000  # far from the seeds people draw, and from the direction sample's stream
Progress = Callable[[float, str], None]


def kind_of(name: str, version: int | None = None) -> str:
    """Which set a direction comes from for recipes of `version` (None: the newest)."""
    if name.startswith("sefa"):
        return "sefa"
    newest = version is None or version >= EYE_GRADIENTS_FROM
    return "eyes" if name.startswith("eyes-") and newest else "tag"


def default_amount(name: str) -> float:
    return DEFAULT_AMOUNT[kind_of(name)]


def fingerprint(model: torch.nn.Module) -> str:
    """Hash of every parameter and buffer: what a cached direction was computed from."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached(file: Path, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    if file.is_file():
        return load_file(file)
    vectors = {name: v.detach().float().cpu().contiguous() for name, v in compute().items()}
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(f"{file.name}.{os.getpid()}.partial")
    save_file(vectors, partial)
    partial.replace(file)  # whole or absent, even when two processes compute at once
    return vectors


def directions_dir() -> Path:
    return cache_dir() / "stylegan-directions"


def colour_logits(classifier: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's hair and eye logits for faces in [-1, 1] of any size."""
    if images.shape[-1] != CLASSIFIER_SIDE:
        images = F.interpolate(images.float(), size=CLASSIFIER_SIDE, mode="bilinear", antialias=True, align_corners=False)
    device = next(classifier.parameters()).device
    return classifier.eval()(images.float().clamp(-1, 1).to(device))


@torch.no_grad()
def read_colours(classifier: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's hair and eye colour indices for faces in [-1, 1] of any size."""
    hair, eyes = colour_logits(classifier, images)
    return hair.argmax(1).cpu(), eyes.argmax(1).cpu()


@torch.no_grad()
def faces_of(generator: Generator, w: torch.Tensor) -> torch.Tensor:
    return generator.synthesis(generator.styles(w), noise="fixed")


def whitened_direction(ws: torch.Tensor, chosen: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """(Σ + ridge·mean variance·I)⁻¹ (mean of ws[chosen] − mean of ws), scaled so that amount 1
    shifts the score it separates the chosen faces by as far as the raw mean difference does."""
    mean = ws.mean(0)
    shift = ws[chosen].mean(0) - mean
    centred = ws - mean
    covariance = centred.t() @ centred / max(len(ws) - 1, 1)
    damping = ridge * covariance.diagonal().mean().clamp_min(1e-12)
    separating = torch.linalg.solve(covariance + damping * torch.eye(len(mean)), shift)
    return separating * (shift @ separating) / (separating @ separating).clamp_min(1e-12)


@torch.no_grad()
def tag_directions(generator: Generator, classifier: torch.nn.Module, samples: int = TAG_SAMPLES, seed: int = TAG_SEED,
                   batch: int = 100, progress: Progress | None = None) -> dict[str, torch.Tensor]:
    """Per colour, the whitened difference between the mean w of the faces read as it and of all
    `samples` faces. A colour the classifier never read among them gets no direction."""
    stream = torch.Generator().manual_seed(seed)
    device = generator.w_avg.device
    ws, hair, eyes = [], [], []
    for start in range(0, samples, batch):
        z = torch.randn(min(batch, samples - start), generator.latent_dim, generator=stream).to(device)
        w = generator.mapping(z)
        h, e = read_colours(classifier, faces_of(generator, w))
        ws.append(w.float().cpu()), hair.append(h), eyes.append(e)
        if progress:
            progress((start + len(z)) / samples, f"tagging {start + len(z)}/{samples} faces")
    ws, hair, eyes = torch.cat(ws).double(), torch.cat(hair), torch.cat(eyes)
    found = {}
    for part, names, read in (("hair", HAIR_COLOURS, hair), ("eyes", EYE_COLOURS, eyes)):
        for k, colour in enumerate(names):
            if (read == k).any():
                found[f"{part}-{colour}"] = whitened_direction(ws, read == k).float()
    return found


@torch.enable_grad()  # also when called under no_grad, as by check_directions
def logit_gradients(generator: Generator, classifier: torch.nn.Module, samples: int, seed: int, batch: int = 50,
                    progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean, over `samples` faces, of the gradient of every hair and eye logit (less their
    mean, which softmax ignores) with respect to each layer's style: (classes, num_ws, latent_dim)."""
    stream = torch.Generator().manual_seed(seed)
    totals = None
    for start in range(0, samples, batch):
        z = torch.randn(min(batch, samples - start), generator.latent_dim, generator=stream).to(generator.w_avg.device)
        with torch.no_grad():
            ws = generator.styles(generator.mapping(z)).contiguous()
        ws.requires_grad_(True)
        parts = [logits - logits.mean(1, keepdim=True) for logits in colour_logits(classifier, generator.synthesis(ws, noise="fixed"))]
        grads = [torch.stack([torch.autograd.grad(logits[:, k].sum(), ws, retain_graph=True)[0].sum(0) for k in range(logits.shape[1])])
                 for logits in parts]
        totals = grads if totals is None else [t + g for t, g in zip(totals, grads)]
        if progress:
            progress((start + len(z)) / samples, f"differentiating {start + len(z)}/{samples} faces")
    return tuple(t.detach().double().cpu() / samples for t in totals)


def eye_directions(generator: Generator, classifier: torch.nn.Module, samples: int | None = None, seed: int = TAG_SEED,
                   progress: Progress | None = None) -> dict[str, torch.Tensor]:
    """Per eye colour, a (num_ws, latent_dim) step in the styles along its logit's mean gradient
    with the hair logits' mean gradients projected out, scaled to raise the logit by EYE_LOGIT_STEP."""
    hair, eyes = logit_gradients(generator, classifier, samples or EYE_SAMPLES, seed, progress=progress)
    _, strengths, axes = torch.linalg.svd(hair.flatten(1), full_matrices=False)
    held = axes[strengths > strengths[0] * 1e-6]  # the hair logits' gradients span L−1 axes: softmax ignores their sum
    found = {}
    for colour, gradient in zip(EYE_COLOURS, eyes):
        step = gradient.flatten() - held.t() @ (held @ gradient.flatten())
        found[f"eyes-{colour}"] = (step * EYE_LOGIT_STEP / (gradient.flatten() @ step)).view_as(gradient).float()
    return found


def style_weights(generator: Generator) -> torch.Tensor:
    """Every modulated conv's style layer, stacked: (total input channels, latent_dim)."""
    layers = [m.style for m in generator.modules() if isinstance(m, ModulatedConv)]
    return torch.cat([layer.weight * layer.scale for layer in layers]).detach().float().cpu()


@torch.no_grad()
def sefa_directions(generator: Generator, count: int = SEFA_COUNT, spread_samples: int = 1000) -> dict[str, torch.Tensor]:
    """The top `count` eigenvectors of AᵀA, each scaled to w's standard deviation along it."""
    weights = style_weights(generator)
    _, vectors = torch.linalg.eigh(weights.t() @ weights)  # ascending eigenvalues
    vectors = vectors.flip(1)[:, :count].t()
    # an eigenvector's sign is arbitrary: fix it so the same weights always give the same slider
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True)))
    vectors = vectors * signs
    z = torch.randn(spread_samples, generator.latent_dim, generator=torch.Generator().manual_seed(TAG_SEED))
    w = generator.mapping(z.to(generator.w_avg.device)).float().cpu()
    spread = (w @ vectors.t()).std(0)
    return {f"sefa{k}": v * s for k, (v, s) in enumerate(zip(vectors, spread))}


@functools.lru_cache(maxsize=1)
def default_classifier():
    from cartoon.acgan.evaluate import load_classifier

    return load_classifier()


_loaded: dict[str, dict[str, torch.Tensor]] = {}  # cache file → vectors, so a render does not reread them
# one computation at a time: a second request for the same directions waits for the first's file
_computing = threading.Lock()


def direction_source(generator: Generator, kind: str, classifier: torch.nn.Module | None = None, samples: int = TAG_SAMPLES,
                     progress: Progress | None = None) -> tuple[Path, Callable[[], dict[str, torch.Tensor]]]:
    """Where the `kind` directions of these weights are cached, named by all they are computed from,
    and how to compute them."""
    if kind == "sefa":
        return (directions_dir() / f"sefa-{fingerprint(generator)}-k{SEFA_COUNT}.safetensors",
                functools.partial(sefa_directions, generator))
    if kind not in ("tag", "eyes"):
        raise ValueError(f'direction kind must be "tag", "eyes" or "sefa", not {kind!r}')
    classifier = classifier or default_classifier()
    named = f"{fingerprint(generator)}-{fingerprint(classifier)}"
    if kind == "tag":
        return (directions_dir() / f"tags-{named}-n{samples}-s{TAG_SEED}-r{RIDGE:g}.safetensors",
                functools.partial(tag_directions, generator, classifier, samples, progress=progress))
    return (directions_dir() / f"eyes-{named}-n{EYE_SAMPLES}-s{TAG_SEED}-step{EYE_LOGIT_STEP:g}.safetensors",
            functools.partial(eye_directions, generator, classifier, progress=progress))


def directions(generator: Generator, kind: str, classifier: torch.nn.Module | None = None, samples: int = TAG_SAMPLES,
               progress: Progress | None = None) -> dict[str, torch.Tensor]:
    """The `kind` ("tag", "eyes" or "sefa") directions of these weights: from memory, disk, or computed."""
    file, compute = direction_source(generator, kind, classifier, samples, progress)
    shipped = shipped_directions() / file.name
    if shipped.is_file():  # the same name means the same weights: computed before shipping
        file = shipped
    key = str(file)
    if key not in _loaded or not file.is_file():
        with _computing:
            _loaded[key] = cached(file, compute)
    return _loaded[key]


def shipped_directions() -> Path:
    """Directions shipped beside the generator's weights (`--ship`), so no visitor waits for them."""
    from cartoon.hub import shipped_folder

    return shipped_folder("stylegan") / "directions"


def direction_vectors(generator: Generator, names, classifier=None, samples: int = TAG_SAMPLES, progress: Progress | None = None,
                      version: int | None = None):
    """{name: vector in w, or one per style} for the named directions, as recipes of `version`
    (None: the newest) move along them; unknown names raise a ValueError listing the known."""
    known = [f"hair-{c}" for c in HAIR_COLOURS] + [f"eyes-{c}" for c in EYE_COLOURS] + list(SEFA_DIRECTIONS)
    for name in names:  # before any direction is computed
        if name not in known:
            raise ValueError(f"unknown direction {name!r}; known: {', '.join(known)}")
    found = {}
    for kind in sorted({kind_of(name, version) for name in names}):
        found |= {name: v for name, v in directions(generator, kind, classifier, samples, progress).items() if kind_of(name, version) == kind}
    unknown = [name for name in names if name not in found]
    if unknown:
        raise ValueError(f"no {unknown[0]} direction: none of the {samples} tagged faces was read as {unknown[0]}")
    device = generator.w_avg.device
    return {name: found[name].to(device) for name in names}


@torch.no_grad()
def check_directions(generator: Generator, classifier: torch.nn.Module, tags=CHECK_TAGS, faces: int = 32, amount: float | None = None,
                     psi: float = 1.0, samples: int = TAG_SAMPLES, progress: Progress | None = None) -> dict[str, dict]:
    """For each tag: the share of `faces` random faces read as it before and after moving along it."""
    vectors = direction_vectors(generator, list(tags), classifier, samples, progress)
    z = torch.stack([torch.randn(generator.latent_dim, generator=torch.Generator().manual_seed(CHECK_SEED + k)) for k in range(faces)])
    w = generator.truncate(generator.mapping(z.to(generator.w_avg.device)), psi)
    report = {}
    for tag in tags:
        part, colour = tag.split("-", 1)
        target = (HAIR_COLOURS if part == "hair" else EYE_COLOURS).index(colour)
        step = default_amount(tag) if amount is None else amount
        shares = []
        for moved in (generator.styles(w), generator.styles(w) + step * vectors[tag]):
            hair, eyes = read_colours(classifier, generator.synthesis(moved, noise="fixed"))
            shares.append(float(((hair if part == "hair" else eyes) == target).float().mean()))
        report[tag] = {"amount": step, "before": shares[0], "after": shares[1]}
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="measure the colour directions (issue 42: after ≥ 80%%, before ≤ 30%%)")
    parser.add_argument("--weights", help="a generator folder (default: the registered stylegan weights)")
    parser.add_argument("--samples", type=int, default=TAG_SAMPLES, help="faces tagged to find the colour directions")
    parser.add_argument("--faces", type=int, default=32, help="random faces moved in the check")
    parser.add_argument("--amount", type=float, help="how far to move (default: the Lab's default amount)")
    parser.add_argument("--tags", default=",".join(CHECK_TAGS))
    parser.add_argument("--ship", metavar="WEIGHTS_FOLDER", help="also copy these weights' directions into WEIGHTS_FOLDER/directions, "
                        "where the Lab reads them first (e.g. weights/stylegan, after an export)")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    from cartoon.hub import load_model

    generator = Generator.from_pretrained(args.weights).eval() if args.weights else load_model("stylegan")
    classifier = default_classifier()
    bar = tqdm(total=100, desc="directions")
    progress = lambda share, text: bar.update(round(share * 100) - bar.n)  # noqa: E731
    if not args.check:
        for kind in ("sefa", "tag", "eyes"):
            print(f"{kind}: {', '.join(directions(generator, kind, classifier, args.samples, progress))}")
        if args.ship:
            folder = Path(args.ship) / "directions"
            folder.mkdir(parents=True, exist_ok=True)
            for kind in ("sefa", "tag", "eyes"):  # exactly the files the Lab reads, not older methods' caches
                file, _ = direction_source(generator, kind, classifier, args.samples)
                source = file if file.is_file() else shipped_directions() / file.name
                if source.resolve() != (folder / file.name).resolve():
                    shutil.copy(source, folder / file.name)
                print(f"-> {folder / file.name}")
        return 0
    report = check_directions(generator, classifier, args.tags.split(","), args.faces, args.amount, samples=args.samples, progress=progress)
    bar.close()
    for tag, row in report.items():
        verdict = "ok" if row["after"] >= 0.8 and row["before"] <= 0.3 else "MISSED"
        print(f"{tag:14} amount {row['amount']:g}: {row['before']:.0%} → {row['after']:.0%}  {verdict}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
