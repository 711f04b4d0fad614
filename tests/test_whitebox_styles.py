"""White-box styles: each loads its own weights folder, only installed ones are offered, and the
command line's --style picks one."""

import numpy as np
import pytest
import torch
from PIL import Image

import cartoon.whitebox
from cartoon.__main__ import main
from cartoon.whitebox import STYLES, available_styles, cartoonize, cartoonize_photo, default_style, offered_styles
from cartoon.whitebox.model import Generator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def fresh_models(monkeypatch):
    """No Hub, and no generator cached by one test answers for another's weights."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cartoon.whitebox.default_model.cache_clear()
    yield
    cartoon.whitebox.default_model.cache_clear()


@pytest.fixture
def cel_weights(tmp_path, monkeypatch):
    """A random 16-channel generator as the cel style's weights folder."""
    torch.manual_seed(0)
    Generator(channels=16, blocks=1).save_pretrained(tmp_path / "cel")
    monkeypatch.setenv("CARTOON_WEIGHTS_WHITEBOX_CEL", str(tmp_path / "cel"))
    return tmp_path / "cel"


@pytest.fixture
def no_cel_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_WEIGHTS_WHITEBOX_CEL", str(tmp_path / "no-cel"))


def photo(size=(40, 32)):
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_unknown_style_is_an_error_that_lists_the_known_ones():
    for call in (lambda: cartoonize(photo(), style="sketch"), lambda: cartoonize_photo(photo(), style="sketch"),
                 lambda: cartoon.whitebox.default_model("sketch")):
        with pytest.raises(ValueError, match="known: " + ", ".join(STYLES)):
            call()


def test_each_style_runs_its_own_weights(cel_weights):
    assert available_styles() == list(STYLES)
    assert default_style() == "cel"
    direct = Generator.from_pretrained(str(cel_weights)).eval().to(memory_format=torch.channels_last)
    cel = pixels(cartoonize(photo(), style="cel"))
    assert np.array_equal(cel, pixels(cartoonize(photo(), model=direct)))
    assert np.array_equal(cel, pixels(cartoonize(photo())))  # the default style
    assert np.abs(cel - pixels(cartoonize(photo(), style="anime-portrait"))).mean() > 5
    assert cartoon.whitebox.default_model("cel") is cartoon.whitebox.default_model("cel")  # loaded once


def test_missing_cel_weights_are_not_offered_and_the_default_falls_back(no_cel_weights):
    assert "cel" not in available_styles()
    assert default_style() == "anime-portrait"
    assert offered_styles() == ["anime-portrait"]
    with pytest.raises(FileNotFoundError, match="style 'cel'.*no-cel"):
        cartoonize(photo(), style="cel")


def test_no_style_installed_still_offers_the_shipped_one(no_cel_weights, monkeypatch, tmp_path):
    monkeypatch.setenv("CARTOON_WEIGHTS_WHITEBOX", str(tmp_path / "none"))
    assert available_styles() == []
    assert offered_styles() == ["anime-portrait"]  # so that using it names the missing folder
    with pytest.raises(FileNotFoundError, match="style 'anime-portrait'"):
        cartoonize(photo())


def test_command_line_style_round_trip(cel_weights, tmp_path):
    photo().save(tmp_path / "photo.png")
    for style in STYLES:
        assert main(["cartoonize", str(tmp_path / "photo.png"), "-o", str(tmp_path / style), "--mode", "whole", "--style", style]) == 0
    written = {style: pixels(Image.open(tmp_path / style / "photo.png")) for style in STYLES}
    for style, image in written.items():
        assert image.shape == (32, 40, 3)
        assert np.array_equal(image, pixels(cartoonize(photo(), style=style)))
    assert main(["cartoonize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "default"), "--mode", "whole"]) == 0
    assert np.array_equal(pixels(Image.open(tmp_path / "default" / "photo.png")), written["cel"])


def test_command_line_names_the_style_and_folder_it_misses(no_cel_weights, tmp_path):
    photo().save(tmp_path / "photo.png")
    with pytest.raises(SystemExit, match="style 'cel'.*no-cel"):
        main(["cartoonize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--style", "cel"])
    assert not (tmp_path / "out").exists()  # stopped before any work
    with pytest.raises(SystemExit):
        main(["cartoonize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--style", "sketch"])
