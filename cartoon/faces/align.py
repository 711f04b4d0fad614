"""Align faces to a square crop by their 5 landmarks, and paste processed crops back seamlessly.

By default the crop frames a face as FFHQ does (eyes a little above the middle, hair and chin
inside; other framings match the project's training data, see FRAMINGS): a similarity
transform (rotation, uniform scale, shift) fitted by least squares maps the detected landmarks
onto the framing's template. Pasting inverts that transform and blends through a mask that
is 1 inside a rounded square and fades to 0 towards the crop's edges; the fade is drawn in crop
coordinates, so it scales with the face.
"""

from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from cartoon.faces.detect import Face, detect_faces

# Where the 5 landmarks (eyes, nose, mouth corners) sit in a crop, as fractions of its side.
# "ffhq": FFHQ's alignment, with hair and chin inside (the default). The other two are the mean
# RetinaFace landmarks of 300 training images of the project's datasets, made left-right
# symmetric, so a model trained on raw images of one of them sees its own framing at inference:
# "selfie2anime" (256² selfies: face a little high, shoulders visible), "utkface" (tight crops).
FRAMINGS = {
    "ffhq": [[0.377, 0.469], [0.623, 0.469], [0.500, 0.613], [0.393, 0.725], [0.611, 0.725]],
    "selfie2anime": [[0.366, 0.354], [0.634, 0.354], [0.500, 0.535], [0.385, 0.636], [0.615, 0.636]],
    "utkface": [[0.306, 0.294], [0.694, 0.294], [0.500, 0.520], [0.329, 0.686], [0.671, 0.686]],
}
FRAMINGS = {name: np.array(points, dtype=np.float64) for name, points in FRAMINGS.items()}
TEMPLATE = FRAMINGS["ffhq"]
# Width of the paste-back fade, as a fraction of the crop's half side.
FEATHER = 0.25


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2×3 matrix of the rotation + uniform scale + shift taking `source` points closest to `target` (Umeyama)."""
    source_mean, target_mean = source.mean(0), target.mean(0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    reflection = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ reflection @ vt
    scale = np.trace(np.diag(singular) @ reflection) / max((source_centred**2).sum() / len(source), 1e-12)
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(image: Image.Image, face: Face, size: int = 256, framing: str = "ffhq") -> tuple[Image.Image, np.ndarray]:
    """(size×size RGB crop, 2×3 matrix mapping image pixels to crop pixels); `framing`: a key of FRAMINGS."""
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; choose one of: {', '.join(FRAMINGS)}")
    matrix = similarity_transform(np.asarray(face.landmarks, np.float64), FRAMINGS[framing] * size)
    # Work on the part of the image the crop covers (+2 px for interpolation), not the whole photo.
    (x0, y0), (x1, y1) = _footprint(cv2.invertAffineTransform(matrix), size, size, image.size, margin=2)
    if x1 <= x0 or y1 <= y0:  # the face lies outside the image: sample its nearest edge
        x0, y0, x1, y1 = 0, 0, image.width, image.height
    pixels = np.asarray(image.crop((x0, y0, x1, y1)).convert("RGB"))
    sampled = matrix + matrix[:, :2] @ np.array([[0, 0, x0], [0, 0, y0]], np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        # warpAffine samples bilinearly: shrink a large face with area averaging first so the
        # crop is not aliased, then warp from the smaller copy.
        factor = 2 * scale
        pixels = cv2.resize(pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        sampled = sampled @ np.diag([1 / factor, 1 / factor, 1.0])
    crop = cv2.warpAffine(pixels, sampled, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(crop), matrix


def _footprint(crop_to_image: np.ndarray, crop_width: int, crop_height: int, image_size, margin: int):
    """Integer bounds (x0, y0), (x1, y1) of a crop's corners mapped into the image, clipped to it."""
    corners = np.array([[0, 0], [crop_width, 0], [0, crop_height], [crop_width, crop_height]], np.float64)
    mapped = corners @ crop_to_image[:, :2].T + crop_to_image[:, 2]
    low = np.maximum(np.floor(mapped.min(0)).astype(int) - margin, 0)
    high = np.minimum(np.ceil(mapped.max(0)).astype(int) + margin, image_size)
    return low, high


@functools.lru_cache(maxsize=8)
def paste_mask(width: int, height: int) -> np.ndarray:
    """(height, width) float mask: 1 inside a rounded rectangle, smoothly 0 at the crop's border."""
    across, down = ((np.arange(n) + 0.5) / n * 2 - 1 for n in (width, height))
    radius = (np.abs(across)[None, :] ** 4 + np.abs(down)[:, None] ** 4) ** 0.25
    ramp = np.clip((1 - radius) / FEATHER, 0, 1)
    mask = (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)  # smoothstep: no visible seam
    mask.flags.writeable = False  # shared between calls through the cache
    return mask


def paste_faces(image: Image.Image, crops: list[Image.Image], matrices: list[np.ndarray]) -> Image.Image:
    """`image` with each crop warped back where `align_face` took it from, blended softly."""
    if len(crops) != len(matrices):
        raise ValueError(f"{len(crops)} crops but {len(matrices)} matrices")
    result = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = result.shape[:2]
    for crop, matrix in zip(crops, matrices):
        pixels = np.asarray(crop.convert("RGB"), dtype=np.float32)
        inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
        # Warp only into the crop's footprint on the image: the cost follows the face, not the photo.
        (x0, y0), (x1, y1) = _footprint(inverse, crop.width, crop.height, (width, height), margin=1)
        if x1 <= x0 or y1 <= y0:
            continue
        local = inverse - np.array([[0, 0, x0], [0, 0, y0]], np.float64)
        region = (int(x1 - x0), int(y1 - y0))
        warped = cv2.warpAffine(pixels, local, region, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(paste_mask(crop.width, crop.height), local, region, flags=cv2.INTER_LINEAR, borderValue=0)
        target = result[y0:y1, x0:x1]
        target += (warped - target) * mask[..., None]
    return Image.fromarray(np.clip(result + 0.5, 0, 255).astype(np.uint8))


def apply_to_faces(
    image: Image.Image,
    transform: Callable[[Image.Image], Image.Image],
    size: int = 256,
    max_faces: int = 8,
    background: Image.Image | None = None,
    framing: str = "ffhq",
) -> tuple[Image.Image, list[Face]]:
    """Detect faces, run `transform` on each aligned crop, paste the results onto `background`.

    `background` (e.g. the whole-image cartoon) defaults to the image itself and is resized to
    the image's size if it differs. With no face found, the background comes back unchanged
    and the face list is empty: the caller says so to the user.
    """
    image = image.convert("RGB")
    base = image if background is None else background.convert("RGB")
    if base.size != image.size:
        base = base.resize(image.size, Image.Resampling.LANCZOS)
    faces = detect_faces(image, max_faces=max_faces)
    crops, matrices = [], []
    for face in faces:
        crop, matrix = align_face(image, face, size, framing)
        result = transform(crop).convert("RGB")
        if result.size != crop.size:
            result = result.resize(crop.size, Image.Resampling.LANCZOS)
        crops.append(result)
        matrices.append(matrix)
    return (paste_faces(base, crops, matrices) if faces else base.copy()), faces
