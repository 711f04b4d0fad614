"""The Cartoonize tab end to end: the real app on loopback, driven through gradio_client."""

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

import cartoon.whitebox
from app import EXAMPLES
from cartoon.tabs.cartoonize import run_cartoonize, style_choices
from cartoon.whitebox import STYLES, default_style, offered_styles
from cartoon.whitebox.model import Generator


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def cartoonize(client, path, mode="faces", strength=1.0, max_side=1024, style=None):
    """(before/after slider pair, the downloaded PNG as an array, the notes shown); without a style,
    the call an API client written before styles existed makes."""
    inputs = (handle_file(str(path)), mode, strength, max_side) + ((style,) if style else ())
    pair, download, notes = client.predict(*inputs, api_name="/cartoonize")
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


def test_style_is_picked_through_the_api_and_defaults_to_the_default_style(client):
    parameters = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/cartoonize"]["parameters"]
    style = next(parameter for parameter in parameters if parameter["label"] == "Style")
    assert style["type"]["enum"] == offered_styles()  # the app serves the same weights folder as this process
    assert style["parameter_default"] == default_style()
    unstyled = cartoonize(client, EXAMPLES / "astronaut.jpg", mode="whole", max_side=256)[1]
    for name in offered_styles():
        styled = cartoonize(client, EXAMPLES / "astronaut.jpg", mode="whole", max_side=256, style=name)[1]
        assert np.array_equal(styled, unstyled) == (name == default_style())


def test_unknown_style_is_refused(client):
    with pytest.raises(Exception, match="not in the list of choices"):
        cartoonize(client, EXAMPLES / "astronaut.jpg", style="sketch")


@pytest.fixture
def fresh_styles(monkeypatch, tmp_path):
    """No generator cached by one test answers for another's weights; the cel folder is the test's."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CARTOON_WEIGHTS_WHITEBOX_CEL", str(tmp_path / "cel"))
    cartoon.whitebox.default_model.cache_clear()
    yield tmp_path / "cel"
    cartoon.whitebox.default_model.cache_clear()


def test_dropdown_offers_only_the_installed_styles_default_first(fresh_styles):
    assert [value for _, value in style_choices()] == ["anime-portrait"]
    Generator(channels=16, blocks=1).save_pretrained(fresh_styles)
    choices = style_choices()
    assert [value for _, value in choices] == list(STYLES) and choices[0][1] == "cel"
    assert all(STYLES[value].description in label for label, value in choices)


def test_a_style_without_weights_says_which_folder_is_missing(fresh_styles):
    with pytest.raises(gr.Error, match=r"cel style's weights are not installed \(weights/whitebox-cel\)"):
        run_cartoonize(str(EXAMPLES / "astronaut.jpg"), "whole", 1.0, 256, "cel", progress=lambda *args, **kwargs: None)
