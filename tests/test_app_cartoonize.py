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
    return client.predict(handle_file(str(path)), mode, strength, max_side, api_name="/cartoonize")


@pytest.mark.parametrize("mode", ["faces", "whole", "crop"])
def test_example_photo_is_cartoonized(client, mode):
    (before, after), download, notes = cartoonize(client, EXAMPLES / "astronaut.jpg", mode=mode)
    photo = np.asarray(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB"), dtype=float)
    result = np.asarray(Image.open(after["path"] if isinstance(after, dict) else after).convert("RGB"), dtype=float)
    saved = Image.open(download if isinstance(download, str) else download["value"])
    assert saved.format == "PNG"
    if mode == "crop":
        assert "1 face" in notes
        assert result.shape[0] == result.shape[1]  # one aligned square crop
    else:
        assert result.shape == photo.shape
        assert np.abs(result - photo).mean() > 2  # the model changed the picture


def test_strength_zero_returns_the_photo(client):
    (_, after), _, _ = cartoonize(client, EXAMPLES / "astronaut.jpg", mode="whole", strength=0.0)
    photo = np.asarray(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB"), dtype=float)
    result = np.asarray(Image.open(after["path"] if isinstance(after, dict) else after).convert("RGB"), dtype=float)
    assert np.abs(result - photo).mean() < 1.5  # only rounding differs


def test_longest_side_limit_is_applied_and_said(client):
    (_, after), _, notes = cartoonize(client, EXAMPLES / "astronaut.jpg", mode="whole", max_side=256)
    assert Image.open(after["path"] if isinstance(after, dict) else after).size == (256, 256)
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
    (_, after), _, notes = cartoonize(client, path)
    assert "No face found" in notes
    assert Image.open(after["path"] if isinstance(after, dict) else after).size == (192, 128)
