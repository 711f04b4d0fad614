"""The talking-mouth finder: which channels it keeps, the amount it picks, the edit it writes.

A tiny random generator has no mouth, so what a push does to the mouth region is stood in for by
a table (channel → darkening and redness per face) that saturates with the amount like the trained
generator's does; the generator itself still decides sizes, cells and the saved edit's fit.
"""

import math

import pytest
import torch
from PIL import Image
from test_stylegan_lab import tiny_generator

from cartoon.stylegan import mouth
from cartoon.stylegan.edits import Edit

pytestmark = pytest.mark.usefixtures("one_thread")

FACES = len(mouth.SEARCH_SEEDS)
# per channel of the tiny generator's 8: darkening per unit push on each face (positive = darker)
EFFECT = torch.tensor([
    [0.1] * FACES,                    # 0: darkens a little everywhere
    [0.5] * (FACES - 1) + [-0.2],     # 1: strong, but lightens one face: not kept
    [-0.4] * FACES,                   # 2: darkens when pushed down
    [0.3] * FACES,                    # 3: darkens, but paints a non-red colour: not kept
    [0.0] * FACES,                    # 4 … 7: nothing
    [0.0] * FACES, [0.0] * FACES, [0.0] * FACES,
])
REDNESS = torch.tensor([0.2, 0.2, 0.2, -0.1, 0.2, 0.2, 0.2, 0.2])


def fake_darkening(generator, ws, base, edit, region):
    faces = torch.arange(len(ws)) % FACES
    push = sum(w * EFFECT[c, faces] for c, w in zip(edit.channels, edit.weights)) * edit.amount
    dark = push * math.exp(-abs(edit.amount) / 3)  # rises, peaks at amount 3, falls: the bright blob
    red = torch.full((len(ws),), min(float(REDNESS[c]) for c in edit.channels))
    return dark, red


def test_mouth_cells_sit_centred_two_thirds_down():
    assert mouth.mouth_cells(16) == [(10, 7), (10, 8)]
    region = mouth.mouth_region([(10, 7), (10, 8)], 16, 64)
    rows, columns = region.nonzero(as_tuple=True)
    assert (int(rows.min()), int(rows.max()), int(columns.min()), int(columns.max())) == (38, 45, 26, 37)


def test_the_finder_keeps_channels_that_open_every_mouth(monkeypatch):
    monkeypatch.setattr(mouth, "darkening", fake_darkening)
    generator = tiny_generator()
    edit, report = mouth.find_mouth_edit(generator, block=2, channels=2)
    assert list(edit.channels) == [2, 0] and list(edit.weights) == [-1.0, 1.0]  # strongest first, with its sign
    assert edit.cells == mouth.mouth_cells(8) and edit.block == 2
    assert edit.amount == 1.5  # the first amount of the sweep whose darkening reaches REACH of the peak (at 3)
    assert [row["channel"] for row in report["ranked"]] == [2, 0]
    assert Edit.from_json(edit.to_json()) == edit and edit.check(generator) is edit


def test_no_mouth_channel_is_a_clear_message():
    with pytest.raises(ValueError, match="no channel of block 1 darkens the mouth"):
        mouth.find_mouth_edit(tiny_generator(), block=1)


def test_cli_writes_an_edit_for_these_weights_and_a_sheet(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(mouth, "darkening", fake_darkening)
    tiny_generator().save_pretrained(str(tmp_path / "weights"))
    output, sheet = tmp_path / "edits" / "mouth.json", tmp_path / "mouth.png"
    assert mouth.main(["--weights", str(tmp_path / "weights"), "--block", "2", "--output", str(output), "--sheet", str(sheet)]) == 0
    edit = Edit.load(output, tiny_generator())
    assert list(edit.channels) == [2, 0]
    assert Image.open(sheet).size == (3 * (4 * 16 + 3 * 2), 3 * (4 * 16 + 3 * 2))  # 4 seeds × 4 amounts, ×3
    assert '"share_opened": 1.0' in capsys.readouterr().out

    monkeypatch.setenv("CARTOON_WEIGHTS_STYLEGAN", str(tmp_path / "weights"))
    assert mouth.shipped_mouth(tiny_generator()) is None  # not shipped yet
    assert mouth.main(["--weights", str(tmp_path / "weights"), "--block", "2", "--ship", str(tmp_path / "weights")]) == 0
    assert mouth.shipped_mouth(tiny_generator()) == edit
    assert mouth.shipped_mouth(tiny_generator(seed=1)) is None  # other weights: another mouth
