"""The Cartoonize tab end to end: the real app on loopback, driven through gradio_client."""

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from app import EXAMPLES


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def cartoonize(client, path, mode="faces", strength=1.0, max_side=1024):
    """(before/after slider pair, the downloaded PNG as an array, the notes shown)."""
    pair, download, notes = client.predict(handle_file(str(path)), mode, strength, max_side, api_name="/cartoonize")
    # a DownloadButton returned as an update arrives as {"value": path, ...}
    saved = Image.open(download["value"] if isinstance(download, dict) else download)
    assert saved.format == "PNG"
    return pair, np.asarray(saved.convert("RGB"), dtype=float), notes


def photo_pixels(path=EXAMPLES / "astronaut.jpg"):
    return np.asarray(Image.open(path).convert("RGB"), dtype=float)


@pytest.mark.parametrize("mode", ["faces", "whole", "crop"])
def test_example_photo_is_cartoonized(client, mode):
    pair, result, notes = cartoonize(client, EXAMPLES / "astronaut.jpg", mode=mode)
    photo = photo_pixels()
    assert len(pair) == 2  # before and after for the slider
    if mode == "crop":
        assert "1 face" in notes
        assert result.shape[0] == result.shape[1]  # one aligned square crop
    else:
        assert result.shape == photo.shape
        assert np.abs(result - photo).mean() > 2  # the model changed the picture


def test_strength_zero_returns_the_photo(client):
    _, result, _ = cartoonize(client, EXAMPLES / "astronaut.jpg", mode="whole", strength=0.0)
    assert np.abs(result - photo_pixels()).max() <= 1  # only rounding differs


def test_longest_side_limit_is_applied_and_said(client):
    _, result, notes = cartoonize(client, EXAMPLES / "astronaut.jpg", mode="whole", max_side=256)
    assert result.shape == (256, 256, 3)
    assert "scaled down" in notes


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"GIF89a but not really", "not an image"), (b"\x89PNG\r\n\x1a\n" + bytes(64), "not an image|damaged")],
    ids=["zero-bytes", "fake-gif", "broken-png"],
)
def test_bad_files_get_a_clear_message(client, tmp_path, content, message):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(Exception, match=message):
        cartoonize(client, path)


def test_photo_without_a_face_falls_back_to_whole_image(client, tmp_path):
    path = tmp_path / "stripes.png"
    stripes = np.zeros((128, 192, 3), np.uint8)
    stripes[:, ::16] = (250, 180, 40)
    Image.fromarray(stripes).save(path)
    _, result, notes = cartoonize(client, path)
    assert "No face found" in notes
    assert result.shape == (128, 192, 3)
