"""Image input and output shared by every model: whatever a user hands us becomes a sane RGB image.

`open_image` turns a path, bytes, a PIL image or an array into an 8-bit RGB `PIL.Image` no larger
than a longest-side limit, and says in plain words what it had to change on the way. Anything it
cannot make sense of raises `ImageError`, whose message is meant for the user as it stands.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

# Larger than any camera photo a person would upload (12000×9000 is 108 MP), small enough that a
# crafted header cannot make Pillow allocate gigabytes.
MAX_PIXELS = 150_000_000
MAX_FILE_BYTES = 60 * 1024 * 1024
MIN_SIDE = 32
DEFAULT_MAX_SIDE = 1024

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


# What a folder of images is taken to hold; other files in it are passed over.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class ImageError(ValueError):
    """A user-facing reason why an input cannot be used."""


@dataclass
class LoadedImage:
    image: Image.Image  # RGB, 8 bits per channel
    notes: list[str] = field(default_factory=list)


def open_image(source, max_side: int | None = DEFAULT_MAX_SIDE) -> LoadedImage:
    """Decode `source` into RGB, honour EXIF rotation, and bound its size."""
    notes: list[str] = []
    image = _decode(source)
    if getattr(image, "is_animated", False) and getattr(image, "n_frames", 1) > 1:
        image.seek(0)
        notes.append(f"Animated image with {image.n_frames} frames: the first frame was used.")
    if max_side and image.format == "JPEG" and max(image.size) > 2 * max_side:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: a 12000-px photo never sits in memory whole.
        image.draft("RGB", (max_side, max_side))
    try:
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image, notes)
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"The image data is damaged and could not be decoded ({error}).") from error

    width, height = image.size
    if min(width, height) < 1:
        raise ImageError("The image has no pixels.")
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        notes.append(f"Large image ({width}×{height}) scaled down to {size[0]}×{size[1]}.")
    if min(image.size) < MIN_SIDE:
        scale = MIN_SIDE / min(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        notes.append(f"Very small image ({image.width}×{image.height}) scaled up to {size[0]}×{size[1]}.")
        image = image.resize(size, Image.Resampling.BICUBIC)
    return LoadedImage(image, notes)


def _decode(source) -> Image.Image:
    if source is None:
        raise ImageError("No image was given: upload a photo first.")
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"No such file: {path.name}")
        size = path.stat().st_size
        if size == 0:
            raise ImageError(f"{path.name} is empty (0 bytes).")
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{path.name} is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
        data = path.read_bytes()
    elif isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        if not data:
            raise ImageError("The upload is empty (0 bytes).")
    else:
        raise ImageError(f"Cannot read an image from a {type(source).__name__}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
        return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"The image is too large to open safely ({error}).") from error
    except UnidentifiedImageError as error:
        raise ImageError("This file is not an image that can be read (JPEG, PNG, WebP, GIF, BMP, TIFF…).") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"The image file is damaged or truncated ({error}).") from error


def _from_array(array: np.ndarray) -> Image.Image:
    if array.size == 0:
        raise ImageError("The image is empty.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"An image array must be H×W, H×W×3 or H×W×4, not {array.shape}.")
    if array.dtype != np.uint8:
        array = _rescale_to_uint8(array.astype(np.float64))
    return Image.fromarray(array)


def _rescale_to_uint8(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    high = float(finite.max()) if finite.size else 1.0
    # Floats in [0, 1] are the usual convention; anything larger is an integer range (16-bit…).
    scale = 255.0 if high <= 1.0 else 255.0 / (65535.0 if high > 255 else 255.0)
    return np.clip(np.nan_to_num(values) * scale, 0, 255).round().astype(np.uint8)


def _to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"High bit-depth image ({mode}) converted to 8 bits.")
        return Image.fromarray(_rescale_to_uint8(np.asarray(image, dtype=np.float64))).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("Transparent areas were filled with white.")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB.")
    return image.convert("RGB")


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image → float tensor (1, 3, H, W) in [-1, 1], the range every model here works in."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_image(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) or (1, 3, H, W) in [-1, 1] → RGB image."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    array = ((tensor.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte()
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy())


def list_images(inputs, extensions=IMAGE_SUFFIXES) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of image paths."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in extensions and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise ImageError(f"No such file or folder: {path}")
    return found
