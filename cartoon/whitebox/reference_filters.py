"""Filters the white-box evaluation reads beside the cartoonizer (`evaluate --reference`): an untrained
cartoon filter, a drawn look built by hand, the photo re-encoded, and two smoothings. Each checks a
measure: the smoothings must miss the probe (and the blur the edge target), the hand-drawn filter
shows that a drawn look on a real face can pass, and the JPEG copy gives the detector's noise floor.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from cartoon.whitebox import probe as cartoon_probe


def opencv_stylization(photo: Image.Image) -> Image.Image:
    """A classic, untrained cartoon filter (OpenCV's edge-preserving stylization), as a reference."""
    return Image.fromarray(cv2.stylization(np.asarray(photo), sigma_s=60, sigma_r=0.45))


def jpeg_copy(photo: Image.Image, quality: int = 50) -> Image.Image:
    """The photo itself, re-encoded: how far landmarks move when nothing but noise changes."""
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def gaussian_blur(photo: Image.Image) -> Image.Image:
    """Flatter than the photo with no line added: must miss the edge and probe targets."""
    return Image.fromarray(cartoon_probe.gaussian_blur(np.asarray(photo), sigma=2.0))


def bilateral_smoothing(photo: Image.Image) -> Image.Image:
    """Flat regions with the photo's edges kept, no outline drawn: must miss the probe target."""
    return Image.fromarray(cartoon_probe.bilateral_smoothing(np.asarray(photo), sigma_colour=75.0, passes=4))


def posterised_with_ink(photo: Image.Image) -> Image.Image:
    """The textbook filter cartoon: bilateral smoothing cut to 8 levels a channel, under dark lines
    where the luminance falls below its 9×9 neighbourhood. Drawn-looking by construction, so it
    checks that the probe answers to flat colour and ink, not to avatar faces."""
    pixels = np.asarray(photo)
    levels = cartoon_probe.bilateral_smoothing(pixels, sigma_colour=75.0, passes=5) // 32 * 32 + 16
    grey = cv2.medianBlur(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), 5)
    paper = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 5) > 0
    return Image.fromarray(np.where(paper[..., None], levels, 0).astype(np.uint8))


REFERENCES = {
    "opencv stylization": opencv_stylization,
    "posterised + ink lines (filter cartoon)": posterised_with_ink,
    "photo as JPEG q50 (detector noise floor)": jpeg_copy,
    "gaussian blur sigma 2": gaussian_blur,
    "bilateral smoothing x4": bilateral_smoothing,
}
