"""The Photo → Anime tab end to end: the real app on loopback, driven through gradio_client."""

import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from app import EXAMPLES


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def translate(client, path, direction="to_anime", mode="crop", max_side=1024, strength=1.0):
    return client.predict(handle_file(str(path)), direction, mode, strength, max_side, api_name="/anime")


def result_image(value):
    return Image.open(value["path"] if isinstance(value, dict) else value).convert("RGB")


def test_portrait_becomes_an_aligned_anime_crop(client):
    (before, after), download, notes = translate(client, EXAMPLES / "astronaut.jpg")
    assert "1 face translated" in notes
    crop, result = result_image(before), result_image(after)
    assert crop.size == result.size and result.width == result.height
    assert np.abs(np.asarray(result, float) - np.asarray(crop, float)).mean() > 2  # the model changed it
    assert Image.open(download if isinstance(download, str) else download["value"]).format == "PNG"


def test_reverse_example_is_found_as_a_face_and_translated_back(client):
    (before, after), _, notes = translate(client, EXAMPLES / "astronaut_anime.png", direction="to_human")
    assert "1 face translated" in notes  # the tab's anime example goes through the face pipeline, not the whole-image fallback
    assert np.abs(np.asarray(result_image(after), float) - np.asarray(result_image(before), float)).mean() > 2


@pytest.mark.parametrize("direction", ["to_anime", "to_human"])
def test_whole_image_keeps_its_size_in_both_directions(client, direction):
    (_, after), _, _ = translate(client, EXAMPLES / "astronaut.jpg", direction=direction, mode="whole", max_side=256)
    assert result_image(after).size == (256, 256)


def test_bad_file_gets_a_clear_message(client, tmp_path):
    path = tmp_path / "upload.png"
    path.write_bytes(b"GIF89a but not really")
    with pytest.raises(Exception, match="not an image"):
        translate(client, path)


def test_lookalikes_in_an_uploaded_gallery(client, tmp_path):
    rng = np.random.default_rng(0)
    archive = tmp_path / "gallery.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for group in ("anime", "human"):
            for i in range(3):
                picture = tmp_path / f"{group}{i}.png"
                Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((64, 64)).save(picture)
                zipped.write(picture, f"{group}/{i}.png")
    found, notes = client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), 2, [handle_file(str(archive))], None, api_name="/lookalikes")
    captions = [item["caption"] for item in found]
    assert [c.split(" ·")[0] for c in captions] == ["anime #1", "anime #2", "human #1", "human #2"]
    distances = [float(c.rsplit(" ", 1)[1]) for c in captions]
    assert distances[0] <= distances[1] and distances[2] <= distances[3]
    assert "2 anime, 2 human" in notes


def test_unusable_gallery_upload_gets_a_clear_message(client, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a gallery")
    with pytest.raises(Exception, match="zip"):
        client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), 2, [handle_file(str(notes))], None, api_name="/lookalikes")


def test_lookalikes_in_an_uploaded_folder(client, tmp_path):
    rng = np.random.default_rng(1)
    pictures = []
    for i in range(3):
        pictures.append(tmp_path / f"face{i}.png")
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((64, 64)).save(pictures[-1])
    found, notes = client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), 5, None, [handle_file(str(p)) for p in pictures], api_name="/lookalikes")
    assert len(found) == 3 and "3 other" in notes


def test_strength_moves_the_result_from_one_domain_to_the_other(client):
    # that strength 0 is exactly the human-domain decoding is checked in test_twingan.py
    results = {}
    for strength in (0.0, 0.5, 1.0):
        (_, after), _, _ = translate(client, EXAMPLES / "astronaut.jpg", strength=strength)
        results[strength] = np.asarray(result_image(after), dtype=float)
    full = np.abs(results[1.0] - results[0.0]).mean()
    assert full > 2 and 0 < np.abs(results[0.5] - results[0.0]).mean() < full
