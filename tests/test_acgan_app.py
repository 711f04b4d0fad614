"""The Avatar and Interpolate tabs end to end, through gradio_client against the served app."""

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from cartoon.acgan import LATEST

NEWEST = f"acgan:v{LATEST};"  # what the tabs draw when no version is named


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def test_avatar_tab_draws_the_recipe_and_reads_it_back(client):
    sheet, gallery, recipe, download, message = client.predict("blue", "red", 7, 4, 0.8, 2, api_name="/avatars")
    assert recipe == NEWEST + "hair=blue;eyes=red;seed=7;n=4;trunc=0.8"
    assert Image.open(sheet).size == (2 * (2 * 64 + 2), 2 * (2 * 64 + 2))  # 2×2 grid, ×2 nearest
    assert [face["caption"] for face in gallery][1] == NEWEST + "hair=blue;eyes=red;seed=8;n=1;trunc=0.8"
    assert Image.open(gallery[0]["image"]).size == (128, 128)
    assert download["value"].endswith(".png") and "4 faces" in message

    # the recipe typed back in gives the controls and the very same pixels
    *controls, again, _, recipe_again, _, _ = client.predict(recipe, 2, api_name="/avatars_recipe")
    assert controls == ["blue", "red", 7, 4, 0.8] and recipe_again == recipe
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(sheet)))


def test_avatar_tab_bad_recipe_is_a_message(client):
    with pytest.raises(Exception, match="unknown hair colour 'teal'"):
        client.predict("acgan:v2;hair=teal", 2, api_name="/avatars_recipe")


def test_interpolate_tab_morph_and_walk(client):
    start, end = "acgan:v2;hair=blue;eyes=red;seed=7;n=1;trunc=0.8", "acgan:v2;hair=pink;eyes=green;seed=9"
    strip, gif, gif_download, video, slider, frame, message = client.predict(start, end, 8, "slerp", 2, 10, api_name="/morph")
    animation = Image.open(gif)
    assert animation.n_frames == 8 and animation.size == (128, 128)
    assert video.endswith(".mp4") and slider["maximum"] == 8 and "8 frames" in message
    assert Image.open(strip).width == 2 * (8 * 64 + 7 * 2)
    first_face = client.predict(start, 2, api_name="/avatars_recipe")[5]
    assert np.array_equal(np.asarray(Image.open(frame).convert("RGB")), np.asarray(Image.open(first_face).convert("RGB")))

    *_, walk_message = client.predict(3, 3, 9, "lerp", 1, 10, api_name="/walk")
    assert walk_message.count(NEWEST) == 3
    with pytest.raises(Exception, match="greater than maximum value 120"):  # the slider's own bound
        client.predict(start, end, 500, "slerp", 2, 10, api_name="/morph")
