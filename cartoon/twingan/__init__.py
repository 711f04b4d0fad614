"""Photo ↔ anime with TwinGAN, and look-alike search in its shared embedding.

    from cartoon.twingan import to_anime, anime_photo, lookalikes

    anime = to_anime(face)                      # a face image → anime face (PIL, model resolution)
    halfway = to_anime(face, strength=0.5)      # the domain switch half thrown
    green = to_anime(face, hair="green", eyes="keep")   # colour-conditioned weights only (colours_offered())
    human = to_anime(anime, reverse=True)       # and back
    result = anime_photo(photo, mode="crop")    # the shared face pipeline: detect, align, (paste back)
    matches = lookalikes(photo, k=8, gallery="my_faces/")   # {"anime": [Match…], "human": […]}
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image, ImageOps

from cartoon.images import open_image, to_image, to_tensor
from cartoon.twingan.colour import KEEP, colours_for
from cartoon.twingan.model import ANIME, HUMAN, TwinGAN

__all__ = ["to_anime", "anime_photo", "lookalikes", "get_model", "colours_offered", "square_tensor", "TwinGAN", "KEEP"]

# where a face sits in the squares the model sees: it trained on selfie2anime's raw 256² selfies
FRAMING = "selfie2anime"


@functools.lru_cache(maxsize=1)
def get_model() -> TwinGAN:
    """The registered TwinGAN (Hub, Hub cache or weights/twingan), loaded once per process."""
    from cartoon.hub import load_model

    return load_model("twingan")


def colours_offered() -> bool:
    """True when the registered weights are installed and take hair and eye colour requests."""
    try:
        return get_model().colour_classes is not None
    except FileNotFoundError:
        return False


def square_tensor(image, resolution: int) -> torch.Tensor:
    """Centre square crop resized to the model's input: (1, 3, R, R) in [-1, 1].

    `image` is a PIL image or anything `cartoon.images.open_image` reads (path, bytes, array).
    """
    if not isinstance(image, Image.Image):
        image = open_image(image).image
    return to_tensor(ImageOps.fit(image.convert("RGB"), (resolution, resolution), Image.Resampling.LANCZOS))


@torch.no_grad()
def to_anime(image, reverse: bool = False, model: TwinGAN | None = None, strength: float = 1.0,
             hair: str = KEEP, eyes: str = KEEP) -> Image.Image:
    """Translate one face image human → anime (or anime → human with `reverse`), at model resolution.

    `strength` 0 reconstructs the input in its own domain, 1 translates fully, in between blends
    the generator's per-domain batch norms. `hair` and `eyes` ask colour-conditioned weights for a
    colour (`cartoon.acgan.model.HAIR_COLOURS`, `EYE_COLOURS`) or "keep"; ValueError for unknown
    names or for weights without colour conditioning.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    model = model or get_model()
    target, source = (HUMAN, ANIME) if reverse else (ANIME, HUMAN)
    domain = source + (target - source) * float(strength)
    device = next(model.parameters()).device
    colours = colours_for(model, hair, eyes, reverse)
    if colours is not None:
        colours = tuple(c.to(device) for c in colours)
    return to_image(model(square_tensor(image, model.resolution).to(device), domain, colours=colours))


def anime_photo(image: Image.Image, reverse: bool = False, mode: str = "crop", model: TwinGAN | None = None, strength: float = 1.0,
                hair: str = KEEP, eyes: str = KEEP):
    """A whole photo through the shared face pipeline (`cartoon.stylize` modes); returns `Stylized`.
    `hair` and `eyes` as for `to_anime`."""
    from cartoon.stylize import stylize

    model = model or get_model()
    colours_for(model, hair, eyes, reverse)  # a bad request fails before any face is searched for

    def translate_square(square: Image.Image) -> Image.Image:
        # back to the square's size, so a pasted-back face lands where the photo's face was
        return to_anime(square, reverse, model, strength, hair, eyes).resize(square.size, Image.Resampling.BICUBIC)

    upscaled = False

    def translate_whole(picture: Image.Image) -> Image.Image:
        # the model sees squares: mirror the picture out to one rather than crop it, so its edges
        # are kept and nothing is stretched, then cut the mirrored margins off again
        nonlocal upscaled
        side = max(picture.size)
        upscaled |= side > model.resolution
        left, top = (side - picture.width) // 2, (side - picture.height) // 2
        margins = ((top, side - picture.height - top), (left, side - picture.width - left), (0, 0))
        square = Image.fromarray(np.pad(np.asarray(picture.convert("RGB")), margins, mode="symmetric"))
        return translate_square(square).crop((left, top, left + picture.width, top + picture.height))

    result = stylize(image, translate_square, mode=mode, face_size=256, whole_transform=translate_whole, framing=FRAMING)
    if upscaled:  # say why the picture looks soft, and how to see the faces at full detail
        result.notes.append(f"The model works at {model.resolution}×{model.resolution}: the whole picture was "
                            f"translated at that size and scaled up, so it is soft; face crops keep more detail.")
    return result


def lookalikes(image: Image.Image, k: int = 8, gallery=None, model: TwinGAN | None = None, align: bool = True):
    """The `k` nearest gallery images per gallery group ("anime", "human", …), nearest first.

    `gallery` is a folder (None: the project's default gallery, made by its own models). With
    `align`, the query is the largest face found, aligned as in training; else the whole image.
    """
    from cartoon.twingan.gallery import open_gallery, query_image

    model = model or get_model()
    image = image if isinstance(image, Image.Image) else open_image(image).image
    return open_gallery(gallery, model).search(model, query_image(image) if align else image, k)
