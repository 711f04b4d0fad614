"""Landmark drift and skin tone: how far a cartoon moved the photo's face and how it changed its skin,
read without a detector on the cartoon.

A face detector reads drawn faces with a bias of its own (docs/whitebox-experiments.md: RetinaFace
puts a posterise-and-ink filter cartoon's landmarks ~0.14 eye distances from its photo's, though no
pixel moved), so comparing the photo's landmarks with the cartoon's cannot tell a cartoonizer that
moved the face from one that only made it look drawn. Here the detector reads the photo alone, and
each of its 5 landmarks is followed into the cartoon by matching the local image structure:

1. Structure map of each image, at the evaluation's 256² (`SIZE`): luminance, a Gaussian blur of
   `BLUR_SIGMA` pixels, then the gradient magnitude. Photo edges and drawn ink lines both respond,
   and the blur lets an ink line's two flanks merge into one ridge near the photo edge it traces.
   The magnitude is then raised to `COMPRESS` (< 1): strong ink lines and faint photo texture
   are brought to a comparable scale, so neither alone decides a match.
2. Around each photo landmark, a square patch of the photo's map with side `PATCH` eye distances
   (the eye, the nose or a mouth corner with some of its surroundings).
3. Within ±`SEARCH` eye distances of the same place in the cartoon's map, the offset where the
   patch's normalised cross-correlation peaks (cv2.TM_CCOEFF_NORMED: invariant to each map's
   brightness and contrast, so ink darker than the photo's edges does not matter), refined to a
   fraction of a pixel by a parabola through the peak and its neighbours on each axis.
4. Drift of the face: the mean length of the 5 offsets, in native-photo pixels, divided by the
   photo's eye distance (the same unit as the RetinaFace landmark distance).

A filter that keeps every pixel in place (JPEG, blur, posterise-and-ink) reads near 0; a face
shifted or warped by d eye distances reads about d. A landmark whose photo patch is flat (no
structure to follow) is left out; a face with none left reads None.

Skin tone kept (`skin_figures`), read from the same landmarks: the colour of a region that is skin on
nearly every face, the middle of the band between the eyes' line and the mouth corners' line (clear
of lashes and lips), across between the eyes' centres: the nose and the cheeks beside it. In photo
and cartoon alike it is the region's per-channel median in CIELAB, so the cartoon's ink lines and
highlights across it do not decide the colour.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from cartoon.faces.skin import skin_corners
from cartoon.whitebox.colour import LUMA
from cartoon.whitebox.probe import resized

SIZE = 256  # the evaluation's resolution: cartoon.whitebox.evaluate reads its look at this size too
BLUR_SIGMA = 1.5  # pixels at 256²: wider than a 2–3 px ink line, narrower than an eye
COMPRESS = 0.5  # structure = gradient magnitude ** COMPRESS
PATCH = 0.7  # side of the photo patch around a landmark, in eye distances
SEARCH = 0.3  # largest offset looked for, in eye distances
MIN_PATCH = 11  # pixels: a tiny face still gets a patch with some structure in it
FLAT_PATCH = 1e-3  # a photo patch whose structure varies less than this (std) has nothing to follow
MIN_SKIN = 20  # pixels at 256²: fewer are too few to read a colour from


def structure_map(image: Image.Image, size: int = SIZE) -> np.ndarray:
    """Compressed gradient magnitude of the blurred luminance of `image` resized to size×size."""
    rgb = resized(image, size).astype(np.float32)
    luminance = cv2.GaussianBlur(rgb @ np.array(LUMA, np.float32), (0, 0), BLUR_SIGMA)
    across = cv2.Sobel(luminance, cv2.CV_32F, 1, 0, ksize=3)
    down = cv2.Sobel(luminance, cv2.CV_32F, 0, 1, ksize=3)
    return np.power(np.hypot(across, down) / 8.0, COMPRESS)  # a Sobel kernel sums to 8× the slope


def _subpixel(scores: np.ndarray, row: int, col: int) -> tuple[float, float]:
    """The peak at (row, col) moved by the vertex of a parabola through it and its neighbours."""

    def vertex(before, at, after):
        curvature = before - 2 * at + after
        return 0.0 if curvature >= 0 else float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5))

    dy = vertex(scores[row - 1, col], scores[row, col], scores[row + 1, col]) if 0 < row < scores.shape[0] - 1 else 0.0
    dx = vertex(scores[row, col - 1], scores[row, col], scores[row, col + 1]) if 0 < col < scores.shape[1] - 1 else 0.0
    return row + dy, col + dx


def working_scale(photo_size: tuple[int, int]) -> np.ndarray:
    """Per-axis factor from a photo's native pixels to the SIZE×SIZE pixels every figure here reads at."""
    return SIZE / np.array(photo_size, dtype=np.float64)


def track_landmarks(photo: Image.Image, cartoon: Image.Image, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (5, 2; x, y in the photo's pixels, NaN where its patch is flat) that carry each photo
    landmark to the place in the cartoon whose structure matches best, and each match's correlation."""
    scale = working_scale(photo.size)
    points = np.clip(np.asarray(landmarks, dtype=np.float64) * scale, 0, SIZE - 1)  # a landmark a little outside the frame is read at its edge
    eyes = float(np.linalg.norm(points[1] - points[0]))
    half = max(MIN_PATCH // 2, int(round(PATCH * eyes / 2)))
    reach = max(2, int(round(SEARCH * eyes)))
    # Zero (flat) border so patches and searches near the image edge stay inside the arrays.
    border = half + reach + 2
    photo_map, cartoon_map = (cv2.copyMakeBorder(structure_map(image), border, border, border, border, cv2.BORDER_CONSTANT, value=0)
                              for image in (photo, cartoon))
    offsets = np.full((len(points), 2), np.nan)
    correlations = np.full(len(points), np.nan)
    for i, (x, y) in enumerate(points):
        col, row = int(round(x)) + border, int(round(y)) + border
        patch = photo_map[row - half : row + half + 1, col - half : col + half + 1]
        if patch.std() < FLAT_PATCH:
            continue
        window = cartoon_map[row - half - reach : row + half + reach + 1, col - half - reach : col + half + reach + 1]
        scores = cv2.matchTemplate(window, patch, cv2.TM_CCOEFF_NORMED)  # (2·reach+1)², centre = no offset
        scores = np.nan_to_num(scores, nan=-1.0)  # a flat cartoon window correlates with nothing
        peak_row, peak_col = np.unravel_index(int(np.argmax(scores)), scores.shape)
        sub_row, sub_col = _subpixel(scores, peak_row, peak_col)
        offsets[i] = np.array([sub_col - reach, sub_row - reach]) / scale
        correlations[i] = scores[peak_row, peak_col]
    return offsets, correlations


def drift_figures(photo: Image.Image, cartoon: Image.Image, landmarks: np.ndarray) -> dict[str, float | None]:
    """`landmark_drift`: the mean length of the 5 offsets, in the photo's eye distances (see the module
    docstring); `structure_match`: the mean correlation at the matches (1: the cartoon's structure
    around the landmarks is the photo's, moved or not). Both None when no landmark has structure to follow."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    offsets, correlations = track_landmarks(photo, cartoon, landmarks)
    followed = ~np.isnan(correlations)
    if not followed.any():
        return {"landmark_drift": None, "structure_match": None}
    eyes = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    return {"landmark_drift": float(np.linalg.norm(offsets[followed], axis=1).mean() / max(eyes, 1.0)),
            "structure_match": float(correlations[followed].mean())}


def landmark_drift(photo: Image.Image, cartoon: Image.Image, landmarks: np.ndarray) -> float | None:
    """Mean displacement of the photo's 5 landmarks into the cartoon, in the photo's eye distances."""
    return drift_figures(photo, cartoon, landmarks)["landmark_drift"]


def skin_region(landmarks: np.ndarray, photo_size: tuple[int, int]) -> np.ndarray:
    """Mask (SIZE×SIZE) of the skin region (`cartoon.faces.skin`) of a photo's landmarks."""
    corners = skin_corners(np.asarray(landmarks, dtype=np.float64) * working_scale(photo_size))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(mask, np.round(corners).astype(np.int32), 1)
    return mask.astype(bool)


def lab_pixels(image: Image.Image, mask: np.ndarray) -> np.ndarray:
    """(N, 3) CIELAB colours (L* 0–100) of the pixels under `mask` in `image` resized to SIZE×SIZE."""
    rgb = resized(image, SIZE).astype(np.float32) / 255
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[mask]


def median_lab(image: Image.Image, mask: np.ndarray) -> np.ndarray:
    """Per-channel median CIELAB colour of the pixels under `mask` (`lab_pixels`)."""
    return np.median(lab_pixels(image, mask), axis=0)


def skin_figures(photo: Image.Image, cartoon: Image.Image, landmarks: np.ndarray) -> dict[str, float | None]:
    """`skin_shift`: CIE76 ΔE between the photo's and the cartoon's skin colour (see the module docstring);
    `skin_lightening`: cartoon L* − photo L* (positive: the cartoon made the skin lighter). Both None when
    the region has fewer than MIN_SKIN pixels (a tiny face, or landmarks that enclose nothing)."""
    mask = skin_region(landmarks, photo.size)
    if mask.sum() < MIN_SKIN:
        return {"skin_shift": None, "skin_lightening": None}
    photo_lab, cartoon_lab = median_lab(photo, mask), median_lab(cartoon, mask)
    return {"skin_shift": float(np.linalg.norm(cartoon_lab - photo_lab)),
            "skin_lightening": float(cartoon_lab[0] - photo_lab[0])}
