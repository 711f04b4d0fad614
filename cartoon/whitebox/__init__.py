"""White-box cartoonizer (Wang & Yu 2020): photo → flat-shaded cartoon with clean edges.

    from cartoon.whitebox import cartoonize
    cartoon = cartoonize(photo)                 # PIL in, PIL out, any size, the default style
    halfway = cartoonize(photo, strength=0.5)   # blend of photo and cartoon
    anime = cartoonize(photo, style="anime-portrait")
    result = cartoonize_photo(photo, mode="faces")  # faces aligned, cartoonized, pasted back

Each style is a generator of its own, trained on its own cartoons, with its own weights folder
and model card (`cartoon.hub` registers them). A style is offered when its weights are
installed; the default is the first offered style in `STYLES`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from PIL import Image

from cartoon.images import to_image, to_tensor
from cartoon.runtime import inference_autocast
from cartoon.stylize import Stylized, stylize
from cartoon.whitebox.colour import keep_photo_colour

__all__ = ["STYLES", "available_styles", "cartoonize", "cartoonize_photo", "default_model", "default_style", "offered_styles", "resolve_style"]


@dataclass(frozen=True)
class Style:
    model: str  # name in cartoon.hub.REGISTRY
    description: str
    # give the cartoon back the photo's colours at a coarse scale (cartoon.whitebox.colour), for a
    # generator whose cartoon set pulls hues toward its own palette
    keep_colour: bool = False


# In order of preference: the default style is the first one whose weights are installed.
STYLES: dict[str, Style] = {
    # its cartoons turn skin pink and hair orange; the correction halves the skin's colour change
    # in every group with probe and edge unmoved, at the cost of 2 more selfie faces of 100 lost to
    # the detector (99% -> 97%) (docs/whitebox-experiments.md, "Skin tone")
    "cel": Style("whitebox-cel", "flat cel colours and dark outlines (trained on the Cartoon Set)", keep_colour=True),
    "anime-portrait": Style("whitebox", "soft anime-portrait shading (trained on selfie2anime)"),
}
SHIPPED_STYLE = "anime-portrait"  # the weights the project has shipped from the start


def resolve_style(style: str | None) -> str:
    """`style` itself when it is known (else ValueError), or `default_style()` for None."""
    if style is None:
        return default_style()
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    return style


def available_styles() -> list[str]:
    """The styles whose weights are installed (folder or Hub cache; the network is not asked)."""
    from cartoon.hub import weights_installed

    return [style for style, spec in STYLES.items() if weights_installed(spec.model)]


def offered_styles() -> list[str]:
    """The styles to offer a user: those installed, or the shipped one alone when none is (so that
    choosing it says which folder is missing)."""
    return available_styles() or [SHIPPED_STYLE]


def default_style() -> str:
    return offered_styles()[0]


@functools.lru_cache(maxsize=None)
def default_model(style: str | None = None) -> torch.nn.Module:
    """The style's generator (default: `default_style()`), loaded once per process, channels-last.

    A style without weights raises FileNotFoundError naming the style and the folder looked in.
    """
    from cartoon.hub import load_model

    style = resolve_style(style)
    try:
        model = load_model(STYLES[style].model)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"style {style!r}: {error}") from None
    return model.to(memory_format=torch.channels_last)


def cartoonize(image: Image.Image, strength: float = 1.0, style: str | None = None, model: torch.nn.Module | None = None,
               keep_colour: bool | None = None, luma_radius: int | None = None) -> Image.Image:
    """Cartoon of an RGB image of the same size; `strength` 0 gives the photo back, 1 the full cartoon.

    `style` picks a generator from `STYLES` (default: `default_style()`); `model` overrides it.
    `keep_colour` (default: the style's setting) restores the photo's hues under the cartoon's
    luminance, see `cartoon.whitebox.colour`; with it, a `luma_radius` restores the photo's luminance
    too, at that coarser scale (it keeps skin brightness, and costs the look: docs/whitebox-experiments.md).
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, not {strength}")
    style = resolve_style(style)
    photo = to_tensor(image.convert("RGB"))
    if strength == 0:
        return to_image(photo)
    model = model or default_model(style)
    device = next(model.parameters()).device
    with torch.inference_mode(), inference_autocast(device):
        cartoon = model(photo.to(device).contiguous(memory_format=torch.channels_last)).float().clamp(-1, 1).cpu()
        if STYLES[style].keep_colour if keep_colour is None else keep_colour:
            cartoon = keep_photo_colour(photo, cartoon, luma_radius)
    return to_image(torch.lerp(photo, cartoon, strength))


def cartoonize_photo(image: Image.Image, mode: str = "faces", strength: float = 1.0, model=None, style: str | None = None) -> Stylized:
    """Cartoonize a photo in one of `cartoon.stylize.MODES`: faces pasted back, whole image, or crops."""
    style = resolve_style(style)
    return stylize(image, lambda picture: cartoonize(picture, strength, style, model), mode=mode)
