"""A cartoon-or-photo judge for the white-box evaluation: logistic regression on frozen VGG16 features.

A flat-share or edge-strength figure can be gamed by a filter (a blur flattens, a sharpening adds
edges); this judge is meant to ask the plainer question "does it look drawn?", and to say no to a
smoothed photo. It is trained on:
- cartoons: the held-out splits of Google's Cartoon Set (flat fills, black outlines) and of
  selfie2anime's anime portraits, so no image a cartoonizer trains on is among them;
- photos, each also as a Gaussian-blurred and a bilateral-smoothed copy (random strengths), all
  three labelled photo, so that softening a photo, however strongly, is not a way to pass. The
  photos come from the *train* splits of selfie2anime and UTKFace: the held-out photos the
  evaluation cartoonizes are never among them.
- with `posterised_negatives`, each photo also as a colour-quantised copy (k-means in CIELAB, 6-16
  colours), labelled photo: without them, 76% of quantised held-out photos were read as cartoons
  (docs/whitebox-experiments.md), so a posteriser with no line drawn could pass.

Features are each channel's mean and standard deviation over the image at VGG16 relu2_2, relu3_3
and relu4_3 (ImageNet weights, `cartoon.vgg`), at 256²: textures and strokes at three scales, no
layout. The probe's own accuracy is cross-validated per kind of image (a photo and its two smoothed
copies always fall in the same fold), and kept beside its weights in a cache keyed by its settings
and file list, so an evaluation trains it once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from cartoon import data
from cartoon.inception import from_uint8
from cartoon.vgg import RELU_INDEX, VGG16Features, cache_dir

CARTOON, PHOTO, BLURRED, BILATERAL, POSTERISED = KINDS = ("cartoon", "photo", "blurred photo", "bilateral photo", "posterised photo")
CARTOON_FOLDERS = (data.CARTOONSET, data.SELFIE_ANIME)  # held-out splits
PHOTO_FOLDERS = (data.SELFIE_PHOTOS, data.UTKFACE)  # train splits
# Smoothing strengths drawn per photo, in pixels of the probe's 256² input: from a light softening
# to a heavy one, so that no single strength is the only thing the probe learns to reject.
BLUR_SIGMA = (1.0, 4.0)
BILATERAL_SIGMA_COLOUR = (50.0, 150.0)
BILATERAL_PASSES = (2, 6)
POSTERISE_COLOURS = (6, 16)
# Part of the cache key: raise it when the features or the fitting change in a way the settings do not show.
PROBE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
    size: int = 256
    layers: tuple[str, ...] = ("relu2_2", "relu3_3", "relu4_3")
    cartoons_per_folder: int = 0  # 0: every held-out cartoon
    photos_per_folder: int = 200  # train-split photos drawn from each photo folder
    # L2 penalty on standardised features; with the default images every kind was judged 100% right
    # in 5-fold cross-validation at every penalty from 1e-4 to 1, so it is not a sensitive choice
    weight_decay: float = 1e-2
    folds: int = 5
    seed: int = 0
    posterised_negatives: bool = False  # also a colour-quantised copy of each photo, labelled photo


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(pixels, (0, 0), sigma)


def bilateral_smoothing(pixels: np.ndarray, sigma_colour: float = 75.0, passes: int = 4) -> np.ndarray:
    """Repeated bilateral filtering, the classic "cartoon" smoothing: flat regions, edges kept."""
    for _ in range(passes):
        pixels = cv2.bilateralFilter(pixels, 9, sigma_colour, 75.0)
    return pixels


def posterised(pixels: np.ndarray, colours: int, seed: int = 0) -> np.ndarray:
    """The photo in `colours` flat colours: k-means in CIELAB, each pixel painted its centre."""
    lab = cv2.cvtColor(pixels, cv2.COLOR_RGB2LAB)
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, labels, centres = cv2.kmeans(lab.reshape(-1, 3).astype(np.float32), colours, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    return cv2.cvtColor(centres[labels.ravel()].reshape(lab.shape).round().astype(np.uint8), cv2.COLOR_LAB2RGB)


def resized(image: Image.Image, size: int) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC))


def training_images(settings: ProbeSettings) -> list[tuple[Path, str]]:
    """(file, CARTOON or PHOTO) of every image the probe learns from; each photo also yields its two smoothed copies."""
    rng = random.Random(settings.seed)
    chosen = []
    for folder in CARTOON_FOLDERS:
        held_out = data.split(folder)[1]
        chosen += [(path, CARTOON) for path in held_out[: settings.cartoons_per_folder or None]]
    for folder in PHOTO_FOLDERS:
        train = data.split(folder)[0]
        chosen += [(path, PHOTO) for path in rng.sample(train, min(settings.photos_per_folder, len(train)))]
    return chosen


def labelled_pixels(files: list[tuple[Path, str]], settings: ProbeSettings):
    """Yields (pixels at the probe's size, kind, group): a photo's smoothed (and posterised) copies share its group."""
    rng = random.Random(settings.seed + 1)
    for group, (path, kind) in enumerate(files):
        pixels = resized(Image.open(path), settings.size)
        yield pixels, kind, group
        if kind == PHOTO:
            yield gaussian_blur(pixels, rng.uniform(*BLUR_SIGMA)), BLURRED, group
            yield bilateral_smoothing(pixels, rng.uniform(*BILATERAL_SIGMA_COLOUR), rng.randint(*BILATERAL_PASSES)), BILATERAL, group
            if settings.posterised_negatives:
                yield posterised(pixels, rng.randint(*POSTERISE_COLOURS), seed=group), POSTERISED, group


class FeatureExtractor:
    """Channel means and standard deviations at the settings' VGG16 layers, for RGB pixel arrays."""

    def __init__(self, settings: ProbeSettings):
        self.settings = settings
        self.vgg = VGG16Features(max(settings.layers, key=RELU_INDEX.get))

    @torch.inference_mode()
    def __call__(self, pixel_arrays: list[np.ndarray], batch: int = 16) -> torch.Tensor:
        features = []
        for start in range(0, len(pixel_arrays), batch):
            images = from_uint8(torch.from_numpy(np.stack(pixel_arrays[start : start + batch])).permute(0, 3, 1, 2))
            activations = self.vgg.activations(images, self.settings.layers)
            features.append(torch.cat([torch.cat([a.mean((2, 3)), a.std((2, 3))], 1) for a in activations], 1))
        return torch.cat(features)


def fit_logistic(features: torch.Tensor, is_cartoon: torch.Tensor, weight_decay: float) -> dict[str, torch.Tensor]:
    """Class-balanced, L2-penalised logistic regression on standardised features (LBFGS to convergence)."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / std
    # each class weighs half of the loss, whatever its count: photos and their copies outnumber cartoons 3:1 or more
    positives = is_cartoon.float().mean()
    sample_weight = torch.where(is_cartoon, 0.5 / positives, 0.5 / (1 - positives)) / len(x)
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        losses = F.binary_cross_entropy_with_logits(x @ weight + bias, is_cartoon.float(), reduction="none")
        loss = (losses * sample_weight).sum() + weight_decay * weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return {"mean": mean, "std": std, "weight": weight.detach(), "bias": bias.detach()}


def p_cartoon_of(parameters: dict[str, torch.Tensor], features: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid((features - parameters["mean"]) / parameters["std"] @ parameters["weight"] + parameters["bias"])


def cross_validated_accuracy(features, kinds: list[str], groups: list[int], settings: ProbeSettings) -> dict[str, dict]:
    """Per kind: the share of images a probe trained on the other folds judged right, and their count."""
    order = list(dict.fromkeys(groups))
    random.Random(settings.seed + 2).shuffle(order)
    fold_of_group = {group: i % settings.folds for i, group in enumerate(order)}
    fold = torch.tensor([fold_of_group[g] for g in groups])
    is_cartoon = torch.tensor([kind == CARTOON for kind in kinds])
    right = torch.zeros(len(kinds), dtype=torch.bool)
    for k in range(settings.folds):
        test = fold == k
        parameters = fit_logistic(features[~test], is_cartoon[~test], settings.weight_decay)
        right[test] = (p_cartoon_of(parameters, features[test]) > 0.5) == is_cartoon[test]
    accuracy = {}
    for kind in KINDS:
        members = torch.tensor([k == kind for k in kinds])
        if members.any():
            accuracy[kind] = {"images": int(members.sum()), "accuracy": float(right[members].float().mean())}
    return accuracy


class CartoonProbe:
    """P(cartoon) of images, with the cross-validated accuracy it was trained to."""

    def __init__(self, settings: ProbeSettings, parameters: dict[str, torch.Tensor], accuracy: dict[str, dict],
                 features: FeatureExtractor | None = None):
        self.settings, self.parameters, self.accuracy = settings, parameters, accuracy
        self.features = features or FeatureExtractor(settings)

    def p_cartoon(self, images: list[Image.Image]) -> np.ndarray:
        features = self.features([resized(image, self.settings.size) for image in images])
        return p_cartoon_of(self.parameters, features).numpy()

    def save(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"settings": json.dumps(dataclasses.asdict(self.settings)), "accuracy": json.dumps(self.accuracy)}
        save_file({name: t.contiguous() for name, t in self.parameters.items()}, path, metadata=metadata)

    @classmethod
    def load(cls, path: Path) -> "CartoonProbe":
        from safetensors import safe_open

        with safe_open(path, "pt") as opened:
            metadata = opened.metadata()
        settings = json.loads(metadata["settings"])
        settings["layers"] = tuple(settings["layers"])
        return cls(ProbeSettings(**settings), load_file(path), json.loads(metadata["accuracy"]))


def cache_path(settings: ProbeSettings, files: list[tuple[Path, str]]) -> Path:
    """Where a probe of these settings and images is kept: any change to either trains a new one."""
    described_settings = dataclasses.asdict(settings)
    if not settings.posterised_negatives:  # absent from the key, so probes cached before the option keep theirs
        del described_settings["posterised_negatives"]
    described = {
        "version": PROBE_VERSION,
        "settings": described_settings,
        "smoothing": [BLUR_SIGMA, BILATERAL_SIGMA_COLOUR, BILATERAL_PASSES],
        "files": [(str(Path(path).relative_to(data.DATA_ROOT)), kind) for path, kind in files],
    }
    key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "whitebox_probe" / f"{key}.safetensors"


def train_probe(settings: ProbeSettings, files: list[tuple[Path, str]], progress=None) -> CartoonProbe:
    extractor = FeatureExtractor(settings)
    pixel_arrays, kinds, groups = [], [], []
    for pixels, kind, group in labelled_pixels(files, settings):
        pixel_arrays.append(pixels)
        kinds.append(kind)
        groups.append(group)
    if progress:
        progress(f"cartoon probe: features of {len(pixel_arrays)} images")
    features = extractor(pixel_arrays)
    accuracy = cross_validated_accuracy(features, kinds, groups, settings)
    parameters = fit_logistic(features, torch.tensor([k == CARTOON for k in kinds]), settings.weight_decay)
    return CartoonProbe(settings, parameters, accuracy, extractor)


def trained_probe(settings: ProbeSettings = ProbeSettings(), progress=print) -> CartoonProbe:
    """The probe of these settings, from the cache when it was trained before, else trained and cached."""
    files = training_images(settings)
    path = cache_path(settings, files)
    if path.is_file():
        return CartoonProbe.load(path)
    probe = train_probe(settings, files, progress)
    probe.save(path)
    return probe
