"""The Latent Lab tab end to end, through gradio_client against the served app.

No trained weights ship yet, so the app is served with a tiny random generator installed as the
`stylegan` weights (CARTOON_WEIGHTS_STYLEGAN); without any, the app starts without the tab.
"""

import os

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image
from served import served_app
from test_stylegan_lab import tiny_generator

from app import build_app

STARTUP_SECONDS = 180


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab-app")
    tiny_generator().save_pretrained(str(folder / "weights"))
    saved = {key: os.environ.get(key) for key in ("CARTOON_WEIGHTS_STYLEGAN", "CARTOON_CACHE")}
    os.environ.update(CARTOON_WEIGHTS_STYLEGAN=str(folder / "weights"), CARTOON_CACHE=str(folder / "cache"))
    try:
        with served_app(STARTUP_SECONDS) as (url, _):
            yield Client(url, verbose=False)
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def test_without_weights_the_app_has_no_lab_tab(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_WEIGHTS_STYLEGAN", str(tmp_path))  # a folder without weights
    demo = build_app()
    assert "Latent Lab" not in [getattr(block, "label", None) for block in demo.blocks.values()]
    assert not any(str(fn.api_name).startswith("lab") for fn in demo.fns.values())


def test_lab_draws_a_recipe_and_reads_it_back(client):
    sefa = [0.0] * 10
    sefa[2] = -1.5
    face, recipe, download = client.predict(7, 0.7, "none", 2, "none", 2, True, 42, 3, "", 2, *sefa, api_name="/lab")
    assert recipe == "stylegan:v1;seed=7;psi=0.7;dir=sefa2:-1.5;mix=42;cross=3"
    assert Image.open(face).size == (32, 32) and download["value"].endswith(".png")

    seed, psi, edit_json, again, recipe_again, _ = client.predict(recipe, 2, api_name="/lab_recipe")
    assert (seed, psi, edit_json, recipe_again) == (7, 0.7, "", recipe)
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(face)))


def test_lab_edit_animation_and_interpolation(client):
    edit_json = client.predict(2, "0, 3:-0.5", "5,3; 5,4", 6, api_name="/lab_edit")
    face, recipe, _ = client.predict(7, 0.7, "none", 2, "none", 2, False, 42, 3, edit_json, 1, *[0.0] * 10, api_name="/lab")
    assert ";edit=" in recipe

    gif, video, message = client.predict(recipe, 6, 10, 2, api_name="/lab_animate")
    animation = Image.open(gif)
    assert animation.n_frames == 6 and animation.size == (32, 32) and video.endswith(".mp4") and "6 frames" in message

    gif, _, message = client.predict(recipe, "stylegan:v1;seed=9", 5, "slerp", 10, 1, api_name="/lab_morph")
    last = Image.open(gif)
    last.seek(4)
    end = client.predict("stylegan:v1;seed=9", 1, api_name="/lab_recipe")[3]
    assert np.array_equal(np.asarray(last.convert("RGB")), np.asarray(Image.open(end).convert("RGB")))


def test_lab_bad_input_is_a_message(client):
    with pytest.raises(Exception, match="psi \\(truncation\\) must be a number from 0.0 to 1.5"):
        client.predict("stylegan:v1;seed=7;psi=9", 2, api_name="/lab_recipe")
    with pytest.raises(Exception, match="an animation needs an edit"):
        client.predict("stylegan:v1;seed=7", 6, 10, 2, api_name="/lab_animate")
    with pytest.raises(Exception, match="unknown channel 99"):
        client.predict(2, "99", "1,1", 6, api_name="/lab_edit")
    with pytest.raises(Exception, match="cells are written like"):
        client.predict(2, "1", "one,two", 6, api_name="/lab_edit")
