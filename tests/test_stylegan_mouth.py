"""The talking-mouth finder: which channels it keeps, the amount it picks, the edit it writes.

A tiny random generator has no mouth, so what a push does to the mouth region is stood in for by
a table (channel → darkening and redness per face) that saturates with the amount like the trained
generator's does, and a spill that grows with the amount at a pace of its own on each face (the
trained generator's mouth spreads into a blot past its opening); the generator itself still
decides sizes, cells and the saved edit's fit.
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


PEAK = 3.0  # the fake darkening's largest amount


def fake_change(spread):
    """A stand-in for mouth.mouth_change whose spill is amount × spread[face]."""
    def change(generator, ws, base, edit):
        faces = torch.arange(len(ws)) % FACES
        push = sum(w * EFFECT[c, faces] for c, w in zip(edit.channels, edit.weights)) * edit.amount
        dark = push * math.exp(-abs(edit.amount) / PEAK)  # rises, peaks, falls: the bright blob
        red = torch.full((len(ws),), min(float(REDNESS[c]) for c in edit.channels))
        return dark, red, abs(edit.amount) * spread[faces]
    return change


NO_SPILL = torch.zeros(FACES)
# faces that blot (spill past mouth.SPILL) from amounts spread evenly over the search sweep
SPILLING = mouth.SPILL / torch.linspace(1.0, 4.0, FACES)


def blotted(amount, spread=SPILLING):
    return float((amount * spread > mouth.SPILL).float().mean())


def test_mouth_cells_sit_centred_two_thirds_down():
    assert mouth.mouth_cells(16) == [(10, 7), (10, 8)]
    region = mouth.mouth_region([(10, 7), (10, 8)], 16, 64)
    rows, columns = region.nonzero(as_tuple=True)
    assert (int(rows.min()), int(rows.max()), int(columns.min()), int(columns.max())) == (38, 45, 26, 37)


def test_the_finder_keeps_channels_that_open_every_mouth(monkeypatch):
    monkeypatch.setattr(mouth, "mouth_change", fake_change(NO_SPILL))
    generator = tiny_generator()
    edit, report = mouth.find_mouth_edit(generator, block=2, channels=2)
    assert list(edit.channels) == [2, 0] and list(edit.weights) == [-1.0, 1.0]  # strongest first, with its sign
    assert edit.cells == mouth.mouth_cells(8) and edit.block == 2
    assert edit.amount == PEAK  # nothing spills: the darkest mouth, never past it
    assert [row["channel"] for row in report["ranked"]] == [2, 0]
    assert Edit.from_json(edit.to_json()) == edit and edit.check(generator) is edit


def test_the_amount_stops_before_the_mouth_turns_into_a_blot_on_most_faces(monkeypatch):
    monkeypatch.setattr(mouth, "mouth_change", fake_change(SPILLING))
    edit, report = mouth.find_mouth_edit(tiny_generator(), block=2, channels=2)
    larger = [a for a in mouth.AMOUNTS if a > edit.amount]
    assert blotted(edit.amount) <= mouth.BLOTTED < blotted(larger[0])  # the largest amount that blots few faces
    assert edit.amount < PEAK  # the darkest mouth would blot most of them
    assert report["blotted"][str(edit.amount)] == pytest.approx(blotted(edit.amount), abs=1e-3)


def test_an_edit_that_blots_at_every_amount_is_a_clear_message(monkeypatch):
    monkeypatch.setattr(mouth, "mouth_change", fake_change(torch.full((FACES,), 100.0)))
    with pytest.raises(ValueError, match="blots the mouth cells .* on most faces even at amount"):
        mouth.find_mouth_edit(tiny_generator(), block=2, channels=2)


def test_no_mouth_channel_is_a_clear_message():
    with pytest.raises(ValueError, match="no channel of block 1 darkens the mouth"):
        mouth.find_mouth_edit(tiny_generator(), block=1)


def test_cli_writes_an_edit_for_these_weights_and_a_sheet(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(mouth, "mouth_change", fake_change(NO_SPILL))
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


class PaintingGenerator:
    """Draws grey 64² faces and, under an edit, a dark red patch on the rows and columns it is given."""
    block_sizes = (16, 64)

    def __init__(self, rows, columns):
        self.rows, self.columns = rows, columns

    def synthesis(self, ws, noise, edits=()):
        faces = torch.zeros(len(ws), 3, 64, 64)
        if edits:
            faces[:, :, self.rows, self.columns] = torch.tensor([-0.2, -0.8, -0.8])[:, None, None]
        return faces


def test_spill_counts_the_change_outside_the_edited_cells_per_change_inside():
    edit = Edit.painted(0, [0], mouth.mouth_cells(16), 16)
    cells = mouth.mouth_region(edit.cells, 16, 64, margin=0)
    rows, columns = cells.nonzero(as_tuple=True)
    top, bottom, left, right = int(rows.min()), int(rows.max()) + 1, int(columns.min()), int(columns.max()) + 1
    ws = torch.zeros(2, 1)
    inside = PaintingGenerator(slice(top, bottom), slice(left, right))
    dark, red, spill = mouth.mouth_change(inside, ws, inside.synthesis(ws, "fixed"), edit)
    assert (dark > 0).all() and (red > 0).all() and (spill == 0).all()  # a dark red mouth that stays put

    doubled = PaintingGenerator(slice(top - (bottom - top), bottom), slice(left, right))  # as much again above the cells
    _, _, spill = mouth.mouth_change(doubled, ws, doubled.synthesis(ws, "fixed"), edit)
    assert (spill == 1).all() and (spill > mouth.SPILL).all()
