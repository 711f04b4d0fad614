"""The three photo modes on a real detector: faces pasted back, whole image, crops; many and no faces."""

import numpy as np
import pytest
from PIL import Image, ImageOps

from app import EXAMPLES
from cartoon.stylize import MAX_FACES, stylize


def invert(image):
    return ImageOps.invert(image.convert("RGB"))


@pytest.fixture(scope="module")
def portrait():
    return Image.open(EXAMPLES / "astronaut.jpg").convert("RGB")


def test_whole_mode_transforms_everything(portrait):
    result = stylize(portrait, invert, mode="whole")
    assert np.array_equal(np.asarray(result.image), np.asarray(invert(portrait)))
    assert result.faces == 0 and result.source is portrait


def test_faces_mode_changes_the_face_more_than_the_background(portrait):
    # the crop transform inverts, the whole-picture transform keeps the photo: only faces change
    result = stylize(portrait, invert, mode="faces", whole_transform=lambda image: image)
    assert result.faces == 1
    change = np.abs(np.asarray(result.image, float) - np.asarray(portrait, float)).mean(-1)
    from cartoon.faces import detect_faces

    x0, y0, x1, y1 = (int(v) for v in detect_faces(portrait)[0].box)
    inside = change[y0:y1, x0:x1].mean()
    corner = change[:64, :64].mean()
    assert inside > 100 and corner < 1


def test_crop_mode_returns_aligned_squares(portrait):
    result = stylize(portrait, invert, mode="crop", face_size=128)
    assert result.image.size == (128, 128) and result.source.size == (128, 128)
    assert np.array_equal(np.asarray(result.image), 255 - np.asarray(result.source))


def test_more_faces_than_the_limit_are_capped_and_said(portrait):
    tile = portrait.resize((160, 160))
    crowd = Image.new("RGB", (160 * 5, 160 * 2), "white")
    for index in range(10):
        crowd.paste(tile, (160 * (index % 5), 160 * (index // 5)))
    result = stylize(crowd, invert, mode="crop", face_size=64)
    assert result.faces == MAX_FACES
    assert result.image.size == (64 * MAX_FACES, 64)
    assert any("More than 8 faces" in note for note in result.notes)


def test_no_face_falls_back_to_whole_image():
    blank = Image.new("RGB", (120, 80), (90, 140, 200))
    for mode in ("faces", "crop"):
        result = stylize(blank, invert, mode=mode)
        assert result.faces == 0 and result.image.size == (120, 80)
        assert result.notes == ["No face found: the whole image was processed instead."]


def test_unknown_mode_is_refused(portrait):
    with pytest.raises(ValueError, match="choose one of"):
        stylize(portrait, invert, mode="sideways")
