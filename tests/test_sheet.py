"""`python -m cartoon sheet`: one self-contained HTML (+ PNG) over a tiny folder, with or without weights."""

import re

import numpy as np
import pytest
from PIL import Image

import cartoon.acgan
import cartoon.twingan
import cartoon.whitebox
from cartoon.__main__ import main
from cartoon.acgan import EYE_COLOURS, HAIR_COLOURS
from cartoon.acgan.model import Generator as AvatarGenerator
from cartoon.sheet import AVATARS_PER_COLOUR
from cartoon.twingan.model import TwinGAN
from cartoon.whitebox.model import Generator as CartoonGenerator

FAMILIES = {"WHITEBOX": lambda: CartoonGenerator(channels=4, blocks=1), "WHITEBOX_CEL": lambda: CartoonGenerator(channels=4, blocks=1),
            "ACGAN": lambda: AvatarGenerator(width=8, blocks=1),
            "TWINGAN": lambda: TwinGAN(resolution=32, width=8, max_width=16, skip_resolutions=(8,))}
LOADERS = [cartoon.whitebox.default_model, cartoon.twingan.get_model, cartoon.acgan.load_generator]


@pytest.fixture(autouse=True)
def fresh_models(monkeypatch):
    """Each test picks its own weights; nothing it loads stays cached for other tests."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for loader in LOADERS:
        loader.cache_clear()
    yield
    for loader in LOADERS:
        loader.cache_clear()


def picture(path, seed, size=(96, 64)):
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 255, size[0], dtype=np.float32)[None, :, None] * rng.uniform(0.2, 1, 3)
    Image.fromarray(np.broadcast_to(gradient, (size[1], size[0], 3)).astype(np.uint8)).save(path)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    picture(folder / "photo.png", 0)  # one photo: face detection alone costs seconds per model
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def data_uris(page):
    return re.findall(r'src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', page)


def test_sheet_without_weights_says_so_and_still_shows_the_photos(photos, tmp_path, monkeypatch):
    for family in (*FAMILIES, "ACGAN_V3"):  # the avatars are drawn by the newest version
        monkeypatch.setenv(f"CARTOON_WEIGHTS_{family}", str(tmp_path / "none"))
    assert main(["sheet", str(photos), "-o", str(tmp_path / "out" / "sheet.html")]) == 0
    page = (tmp_path / "out" / "sheet.html").read_text()
    assert len(data_uris(page)) == 1  # the readable photo, nothing else
    for family in ("cartoon", "anime", "look-alikes", "avatars"):
        assert f"<b>{family}</b>" in page
    assert "no ACGAN weights yet" in page
    assert Image.open(tmp_path / "out" / "sheet.png").size[0] > 0


def test_sheet_with_every_model_is_one_self_contained_file(photos, tmp_path, monkeypatch):
    for family, build in FAMILIES.items():
        build().save_pretrained(tmp_path / family)
        monkeypatch.setenv(f"CARTOON_WEIGHTS_{family}", str(tmp_path / family))
    gallery = tmp_path / "gallery"
    for group in ("anime", "human"):
        (gallery / group).mkdir(parents=True)
        for index in range(3):
            picture(gallery / group / f"{index}.png", 10 + index, size=(48, 48))
    output = tmp_path / "sheet.html"
    assert main(["sheet", str(photos), "-o", str(output), "-k", "2", "--gallery", str(gallery)]) == 0
    page = output.read_text()
    assert re.findall(r'src="([^"]+)"', page) == data_uris(page)  # no file or network references
    per_photo = 2 + len(cartoon.whitebox.STYLES) + 2 * 2  # photo, a cartoon per style, anime, then k look-alikes in each of the two groups
    avatar_rows = len(HAIR_COLOURS) + len(EYE_COLOURS)
    assert len(data_uris(page)) == per_photo + avatar_rows * AVATARS_PER_COLOUR
    assert len(re.findall(r"<figcaption>(anime|human) \d\.\d\d</figcaption>", page)) == 4
    assert "<b>" not in page  # no family is reported missing
    assert all(f"<th>cartoon ({style})</th>" in page for style in cartoon.whitebox.STYLES)  # a column per installed style
    sheet = Image.open(output.with_suffix(".png"))
    assert sheet.height > avatar_rows * 128  # the avatar rows are drawn in the PNG too
