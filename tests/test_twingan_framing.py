"""The anime portraits framed as the photos are: the crop, how it is fitted, and the evaluation's reference cut by it."""

import numpy as np
import pytest
from PIL import Image

from cartoon.twingan.framing import ANIME_CROP, framed, matching_crop
from cartoon.twingan.held_out import load_faces


def portrait_with_a_white_face_box(side=200) -> Image.Image:
    """Black everywhere but the box ANIME_CROP cuts, which is white."""
    pixels = np.zeros((side, side, 3), dtype=np.uint8)
    left, top, right, bottom = (round(f * side) for f in ANIME_CROP)
    pixels[top:bottom, left:right] = 255
    return Image.fromarray(pixels)


def test_raw_framing_is_the_portrait_and_photos_framing_is_the_fixed_crop():
    portrait = portrait_with_a_white_face_box()
    assert framed(portrait, "raw") is portrait
    cut = np.asarray(framed(portrait, "photos"))
    assert cut.shape[0] == cut.shape[1] == round(200 * (ANIME_CROP[2] - ANIME_CROP[0]))
    assert cut.min() == 255  # exactly the box, nothing of the border
    with pytest.raises(ValueError, match="framing"):
        framed(portrait, "ffhq")


def test_the_fitted_crop_puts_the_portraits_face_where_the_photos_is():
    photos = {"eye_centre": np.array([0.5, 0.35]), "eye_distance": 0.28, "eyes_to_mouth": 0.30}
    anime = {"eye_centre": np.array([0.5, 0.40]), "eye_distance": 0.21, "eyes_to_mouth": 0.24}
    left, top, right, bottom = matching_crop(anime, photos)
    side = right - left
    assert bottom - top == pytest.approx(side)
    assert side == pytest.approx((0.21 / 0.28 + 0.24 / 0.30) / 2)
    assert (left + right) / 2 == pytest.approx(0.5)  # centred: training flips left to right
    assert (anime["eye_centre"][1] - top) / side == pytest.approx(photos["eye_centre"][1])  # the eyes land at the photos' height
    # a face as big as the photos' needs the whole portrait
    assert matching_crop(photos, photos) == pytest.approx((0.0, 0.0, 1.0, 1.0))


def test_the_evaluation_sees_the_portraits_in_the_framing_asked_for(tmp_path):
    portrait_with_a_white_face_box().save(tmp_path / "0.png")
    assert load_faces([tmp_path / "0.png"], 32, "photos").min() > 0.9  # the cut is the white box
    assert load_faces([tmp_path / "0.png"], 32).min() == -1  # the raw portrait keeps its black border
