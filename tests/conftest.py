"""Shared fixtures: the real app served on loopback for end-to-end tests, and made-up tagged faces."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from served import served_app  # noqa: E402  (the bench scripts start the app the same way)

STARTUP_SECONDS = 180


@pytest.fixture(scope="session")
def app_url():
    """`python app.py` on 127.0.0.1, offline, as a user starts it; stopped after the session."""
    try:
        with served_app(STARTUP_SECONDS) as (url, _):
            yield url
    except SystemExit as error:  # served_app's way of saying the app did not come up
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def one_thread():
    """Small convolutions: one torch thread is as fast, and far faster when the machine is busy.

    Modules that need it say `pytestmark = pytest.mark.usefixtures("one_thread")`.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tagged_faces(tmp_path):
    """A function writing `count` random side² faces and their tags.csv as anime_tags lays them out;
    `colours(i)` gives face i's (hair, eyes). Returns the folder."""

    def write(count: int, side: int, colours) -> Path:
        folder = tmp_path / "faces"
        (folder / "images").mkdir(parents=True)
        rng = np.random.default_rng(0)
        rows = ["file,hair,eyes"]
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / "images" / f"{i}.png")
            rows.append(f"images/{i}.png,{','.join(colours(i))}")
        (folder / "tags.csv").write_text("\n".join(rows) + "\n")
        return folder

    return write
