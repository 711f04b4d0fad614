"""White-box cartoonizer (Wang & Yu 2020): photo → flat-shaded cartoon with clean edges.

    from cartoon.whitebox import cartoonize
    cartoon = cartoonize(photo)                 # PIL in, PIL out, any size
    halfway = cartoonize(photo, strength=0.5)   # blend of photo and cartoon
    result = cartoonize_photo(photo, mode="faces")  # faces aligned, cartoonized, pasted back
"""

from __future__ import annotations

import functools

import torch
from PIL import Image

from cartoon.images import to_image, to_tensor
from cartoon.runtime import inference_autocast
from cartoon.stylize import Stylized, stylize

__all__ = ["cartoonize", "cartoonize_photo", "default_model"]


@functools.lru_cache(maxsize=1)
def default_model() -> torch.nn.Module:
    """The shipped (or Hub) generator, loaded once per process, in channels-last memory order."""
    from cartoon.hub import load_model

    return load_model("whitebox").to(memory_format=torch.channels_last)


def cartoonize(image: Image.Image, strength: float = 1.0, model: torch.nn.Module | None = None) -> Image.Image:
    """Cartoon of an RGB image of the same size; `strength` 0 gives the photo back, 1 the full cartoon."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, not {strength}")
    photo = to_tensor(image.convert("RGB"))
    if strength == 0:
        return to_image(photo)
    model = model or default_model()
    device = next(model.parameters()).device
    with torch.inference_mode(), inference_autocast(device):
        cartoon = model(photo.to(device).contiguous(memory_format=torch.channels_last)).float().clamp(-1, 1).cpu()
    return to_image(torch.lerp(photo, cartoon, strength))


def cartoonize_photo(image: Image.Image, mode: str = "faces", strength: float = 1.0, model=None) -> Stylized:
    """Cartoonize a photo in one of `cartoon.stylize.MODES`: faces pasted back, whole image, or crops."""
    return stylize(image, lambda picture: cartoonize(picture, strength, model), mode=mode)
