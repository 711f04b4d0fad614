"""Landmark drift (cartoon.whitebox.likeness): 0 when nothing moved, the shift when the face moved,
whatever the cartoon's drawing does to the pixels' values. Landmarks are given, so no detector runs."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from cartoon.whitebox import likeness, reference_filters

EYES = 70.0  # eye distance of the made-up face, in pixels


def made_up_face(width=256, height=256, seed=0) -> tuple[Image.Image, np.ndarray]:
    """A photo-like face (skin oval, eyes with irises, brows, nose, mouth, hair, soft shading and
    sensor noise) and its 5 landmarks: eyes, nose tip, mouth corners."""
    rng = np.random.default_rng(seed)
    cx, cy = width / 2, height / 2
    canvas = np.zeros((height, width, 3), np.float32)
    canvas[:] = (70, 90, 120)  # background
    y, x = np.mgrid[0:height, 0:width]
    canvas += (0.15 * (x - cx) + 0.1 * (y - cy))[..., None]  # light falling across the frame
    cv2.ellipse(canvas, (int(cx), int(cy - 75)), (85, 60), 0, 180, 360, (40, 30, 25), -1)  # hair
    cv2.ellipse(canvas, (int(cx), int(cy + 5)), (75, 95), 0, 0, 360, (200, 160, 135), -1)  # skin
    left, right = (cx - EYES / 2, cy - 20), (cx + EYES / 2, cy - 20)
    nose, mouth_left, mouth_right = (cx, cy + 18), (cx - 27, cy + 45), (cx + 27, cy + 45)
    for ex, ey in (left, right):
        cv2.ellipse(canvas, (int(ex), int(ey)), (15, 7), 0, 0, 360, (235, 230, 225), -1)  # white of the eye
        cv2.circle(canvas, (int(ex), int(ey)), 6, (60, 40, 30), -1)  # iris
        cv2.ellipse(canvas, (int(ex), int(ey - 17)), (18, 4), 0, 0, 360, (70, 50, 40), -1)  # brow
    cv2.ellipse(canvas, (int(nose[0]), int(nose[1])), (10, 6), 0, 0, 360, (160, 115, 95), -1)  # nose shadow
    cv2.line(canvas, (int(cx), int(cy - 12)), (int(nose[0]) - 5, int(nose[1]) - 4), (180, 135, 115), 3)  # nose side
    cv2.ellipse(canvas, (int(cx), int(mouth_left[1])), (27, 7), 0, 0, 360, (170, 80, 80), -1)  # lips
    cv2.line(canvas, (int(mouth_left[0]), int(mouth_left[1])), (int(mouth_right[0]), int(mouth_right[1])), (110, 50, 50), 2)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 1.2) + rng.normal(0, 3, canvas.shape)
    landmarks = np.array([left, right, nose, mouth_left, mouth_right], np.float64)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)), landmarks


def warped(image: Image.Image, dx: np.ndarray, dy: np.ndarray) -> Image.Image:
    """`image` with the content at (x, y) moved to about (x + dx, y + dy) (dx, dy: per-pixel fields)."""
    y, x = np.mgrid[0 : image.height, 0 : image.width].astype(np.float32)
    # backward map: the output pixel at p shows the input at p − d(p), enough for smooth, small fields
    return Image.fromarray(cv2.remap(np.asarray(image), x - dx.astype(np.float32), y - dy.astype(np.float32),
                                     cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))


def shifted(image: Image.Image, dx: float, dy: float) -> Image.Image:
    return warped(image, np.full((image.height, image.width), dx), np.full((image.height, image.width), dy))


def jpeg(image: Image.Image, quality=50) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def test_an_unchanged_face_has_not_drifted():
    photo, landmarks = made_up_face()
    # 0 up to the float32 rounding of cv2.matchTemplate, which the sub-pixel step can pick up
    assert likeness.landmark_drift(photo, photo.copy(), landmarks) == pytest.approx(0, abs=1e-3)


@pytest.mark.parametrize("dx, dy", [(0.05, 0.0), (0.0, -0.05), (0.03, 0.04), (0.1, 0.0)])
def test_a_shifted_face_drifts_by_its_shift(dx, dy):
    photo, landmarks = made_up_face()
    moved = shifted(photo, dx * EYES, dy * EYES)
    assert likeness.landmark_drift(photo, moved, landmarks) == pytest.approx(np.hypot(dx, dy), abs=0.01)
    offsets, correlations = likeness.track_landmarks(photo, moved, landmarks)
    assert np.allclose(offsets, [dx * EYES, dy * EYES], atol=1.0)  # every point, in the photo's pixels
    assert (correlations > 0.8).all()


def test_a_local_warp_reads_as_the_warp_at_the_landmarks():
    """The mouth pulled sideways, the eyes left alone: the drift is the field's mean at the 5 points."""
    photo, landmarks = made_up_face()
    y, x = np.mgrid[0:256, 0:256]
    mouth = landmarks[3:].mean(0)
    field = 0.1 * EYES * np.exp(-((x - mouth[0]) ** 2 + (y - mouth[1]) ** 2) / (2 * (0.5 * EYES) ** 2))
    moved = warped(photo, field, np.zeros_like(field))
    expected = np.mean([field[int(py), int(px)] for px, py in landmarks]) / EYES
    offsets, _ = likeness.track_landmarks(photo, moved, landmarks)
    assert np.abs(offsets[:2]).max() < 1.0 and offsets[3:, 0].min() > 0.5 * 0.1 * EYES  # eyes stay, the mouth moves
    assert likeness.landmark_drift(photo, moved, landmarks) == pytest.approx(expected, abs=0.012)


@pytest.mark.parametrize("filtered, bound", [
    (jpeg, 0.01),
    (reference_filters.gaussian_blur, 0.01),
    (reference_filters.bilateral_smoothing, 0.01),
    (reference_filters.posterised_with_ink, 0.01),  # RetinaFace reads this one ~0.16 from real photos
    # its edge-preserving smoothing smears the ends of thin dark lines: the mouth corners' structure
    # really moves ~2 px outward, so it reads a little above the others (real photos: ~0.03)
    (reference_filters.opencv_stylization, 0.03),
])
def test_filters_that_keep_every_pixel_in_place_read_near_zero(filtered, bound):
    photo, landmarks = made_up_face()
    assert likeness.landmark_drift(photo, filtered(photo), landmarks) < bound


def test_a_drawn_and_moved_face_reads_the_move_not_the_drawing():
    photo, landmarks = made_up_face()
    drawn_and_moved = reference_filters.posterised_with_ink(shifted(photo, 0.05 * EYES, 0))
    assert likeness.landmark_drift(photo, drawn_and_moved, landmarks) == pytest.approx(0.05, abs=0.012)


def test_landmarks_are_in_the_photos_pixels_whatever_its_shape():
    """A 320×240 photo is measured at 256² like any other; offsets come back in its own pixels."""
    photo, landmarks = made_up_face(width=320, height=240)
    moved = shifted(photo, 0.05 * EYES, 0.05 * EYES)
    offsets, _ = likeness.track_landmarks(photo, moved, landmarks)
    assert np.allclose(offsets, 0.05 * EYES, atol=1.0)
    assert likeness.landmark_drift(photo, moved, landmarks) == pytest.approx(0.05 * np.sqrt(2), abs=0.012)


def test_a_face_with_nothing_to_follow_has_no_drift():
    flat = Image.new("RGB", (256, 256), (128, 128, 128))
    landmarks = np.array([[100, 100], [160, 100], [130, 130], [110, 160], [150, 160]], np.float64)
    assert likeness.landmark_drift(flat, flat, landmarks) is None


# Skin tone kept (likeness.skin_figures): the median colour of the skin between eyes and mouth.

def lab(rgb) -> np.ndarray:
    """CIELAB (L* 0–100) of one 0–255 RGB colour."""
    return cv2.cvtColor(np.array([[rgb]], np.float32) / 255, cv2.COLOR_RGB2LAB)[0, 0]


def flat_face(skin, width=320, height=240) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of a face drawn as one flat box of `skin` on a blue ground, and its 5 landmarks; the box
    reaches only a few pixels past the skin region, so a region put in the wrong place reads blue."""
    pixels = np.full((height, width, 3), (40, 60, 200), np.uint8)
    pixels[105:155, 120:200] = skin  # the region: x 130–190, y 115–145 (a quarter to three quarters of 100 → 160)
    landmarks = np.array([[130, 100], [190, 100], [160, 130], [137, 160], [183, 160]], np.float64)
    return pixels, landmarks


def test_an_unchanged_face_keeps_its_skin():
    photo, landmarks = made_up_face()
    assert likeness.skin_figures(photo, photo.copy(), landmarks) == {"skin_shift": 0.0, "skin_lightening": 0.0}


@pytest.mark.parametrize("photo_skin, cartoon_skin", [
    ((110, 72, 55), (232, 176, 168)),  # darker skin drawn in a light pink: lighter
    ((225, 185, 160), (150, 105, 85)),  # light skin drawn darker
])
def test_a_recoloured_face_reads_its_colour_change(photo_skin, cartoon_skin):
    photo, landmarks = flat_face(photo_skin)
    cartoon, _ = flat_face(cartoon_skin)
    figures = likeness.skin_figures(Image.fromarray(photo), Image.fromarray(cartoon), landmarks)
    before, after = lab(photo_skin), lab(cartoon_skin)
    assert figures["skin_lightening"] == pytest.approx(after[0] - before[0], abs=0.1)
    assert figures["skin_shift"] == pytest.approx(np.linalg.norm(after - before), abs=0.1)


def test_thin_dark_lines_across_the_skin_barely_move_its_colour():
    photo, landmarks = flat_face((110, 72, 55))
    cartoon, _ = flat_face((232, 176, 168))
    inked = cartoon.copy()
    inked[::8, 120:200] = inked[105:155, ::8] = 20  # ink lines 1 px wide, every 8 px, both ways across the face
    plain, lined = (likeness.skin_figures(Image.fromarray(photo), Image.fromarray(c), landmarks) for c in (cartoon, inked))
    region = likeness.skin_region(landmarks, (320, 240))
    resized = np.asarray(Image.fromarray(inked).resize((likeness.SIZE,) * 2, Image.BICUBIC))
    assert (resized[region].max(1) < 200).mean() > 0.2  # the lines (and their resampled flanks) cover much of the region
    assert lined["skin_shift"] == pytest.approx(plain["skin_shift"], abs=1.0)
    assert lined["skin_lightening"] == pytest.approx(plain["skin_lightening"], abs=1.0)


@pytest.mark.parametrize("filtered, bound", [
    (reference_filters.gaussian_blur, 0.5),
    (reference_filters.bilateral_smoothing, 0.5),
    (jpeg, 2.3),  # q50 quantises the colour a little coarser: still under the ~2.3 ΔE a viewer can just tell apart
])
def test_filters_that_keep_the_photos_colours_keep_its_skin(filtered, bound):
    photo, landmarks = made_up_face()
    figures = likeness.skin_figures(photo, filtered(photo), landmarks)
    assert figures["skin_shift"] < bound and abs(figures["skin_lightening"]) < 0.5


def test_a_face_with_no_skin_region_has_no_skin_reading():
    photo, landmarks = flat_face((110, 72, 55))
    image = Image.fromarray(photo)
    on_one_point = np.full((5, 2), 160.0)
    tiny = (landmarks - 160) * 0.05 + 160  # eyes 3 px apart
    for degenerate in (on_one_point, tiny):
        assert likeness.skin_figures(image, image, degenerate) == {"skin_shift": None, "skin_lightening": None}
