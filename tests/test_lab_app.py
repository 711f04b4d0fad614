"""The Latent Lab tab end to end, through gradio_client and in the browser, against the served app.

No trained weights ship yet, so the app is served with a tiny random generator installed as the
`stylegan` weights (CARTOON_WEIGHTS_STYLEGAN); without any, the app starts without the tab.
"""

import os

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image
from served import served_app
from test_browser import CHROMIUM, CHROMIUM_FLAGS, missing_browser
from test_stylegan_lab import tiny_generator

from app import build_app

STARTUP_SECONDS = 180


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab-app")
    tiny_generator().save_pretrained(str(folder / "weights"))
    saved = {key: os.environ.get(key) for key in ("CARTOON_WEIGHTS_STYLEGAN", "CARTOON_CACHE")}
    os.environ.update(CARTOON_WEIGHTS_STYLEGAN=str(folder / "weights"), CARTOON_CACHE=str(folder / "cache"))
    try:
        with served_app(STARTUP_SECONDS) as (url, _):
            yield url
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="module")
def client(lab_url):
    return Client(lab_url, verbose=False)


def test_without_weights_the_app_has_no_lab_tab(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_WEIGHTS_STYLEGAN", str(tmp_path))  # a folder without weights
    demo = build_app()
    assert "Latent Lab" not in [getattr(block, "label", None) for block in demo.blocks.values()]
    assert not any(str(fn.api_name).startswith("lab") for fn in demo.fns.values())


def test_shipped_slider_names_and_mouth_edit_show_in_the_tab(tmp_path, monkeypatch):
    from cartoon.stylegan import lab
    from cartoon.stylegan.edits import Edit
    from cartoon.stylegan.mouth import mouth_file
    from cartoon.stylegan.sefa_names import write_names

    generator = tiny_generator()
    generator.save_pretrained(str(tmp_path / "weights"))
    monkeypatch.setenv("CARTOON_WEIGHTS_STYLEGAN", str(tmp_path / "weights"))
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    write_names(generator, {"sefa1": "hair length"}, tmp_path / "weights" / "directions")
    mouth = Edit.painted(2, [0], [(5, 3)], 8, amount=2.0).save(mouth_file(generator, tmp_path / "weights" / "directions"))
    lab.load_generator.cache_clear()
    try:
        blocks = list(build_app().blocks.values())
    finally:
        lab.load_generator.cache_clear()
    labels = [getattr(block, "label", None) for block in blocks]
    assert "sefa1 · hair length" in labels and "sefa0" in labels
    samples = [str(sample) for block in blocks for sample in getattr(block, "samples", None) or []]
    assert any(Edit.load(mouth).to_text() in sample for sample in samples)


def test_lab_draws_a_recipe_and_reads_it_back(client):
    sefa = [0.0] * 10
    sefa[2] = -1.5
    face, recipe, download = client.predict(7, 0.7, "none", 2, "none", 2, True, 42, 3, "", 2, *sefa, api_name="/lab")
    assert recipe == "stylegan:v2;seed=7;psi=0.7;dir=sefa2:-1.5;mix=42;cross=3"
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


def test_lab_tab_in_the_browser(lab_url, tmp_path):
    """Draw, see the feature map, click a cell to rank channels, paint a cell, apply the edit."""
    reason = missing_browser()
    if reason:
        pytest.skip(f"browser test needs Chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(lab_url)
        page.get_by_role("tab", name="Latent Lab").click()
        panel = page.locator(".tabitem:visible")
        panel.locator("button.primary").first.click()
        recipe = panel.get_by_label("Recipe (paste one and press Enter to redraw it)")
        page.wait_for_function("(box) => box.value.startsWith('stylegan:v2;seed=7')", arg=recipe.element_handle())
        view = page.locator("#lab-feature-map img")
        view.wait_for()
        box = view.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.6)
        panel.get_by_text("Most active channels at cell").wait_for()

        panel.get_by_label("paint edit cells").check()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.6)
        cells = panel.get_by_label("Cells (row,col; …) — paint them on the map")
        page.wait_for_function("(box) => /^\\d+,\\d+$/.test(box.value)", arg=cells.element_handle())
        panel.get_by_role("button", name="Apply edit").click()
        page.wait_for_function("(box) => box.value.includes(';edit=')", arg=recipe.element_handle())
        assert page.get_by_test_id("toast-body").count() == 0
        page.screenshot(path=str(tmp_path / "latent-lab.png"), full_page=True)
        browser.close()
