"""Names for the Latent Lab's SeFa sliders: strips to name them by, names shipped per weights."""

import numpy as np
import pytest
import torch
from PIL import Image
from test_stylegan_lab import generator as lab_generator
from test_stylegan_lab import pixels, tiny_generator

from cartoon.__main__ import main
from cartoon.stylegan import sefa_names
from cartoon.stylegan.directions import SEFA_COUNT, shipped_directions
from cartoon.stylegan.lab import Recipe, render

pytestmark = pytest.mark.usefixtures("one_thread")
generator = lab_generator  # a tiny generator installed as the registered stylegan weights, with a private cache


def test_names_belong_to_the_weights_they_were_given_on(generator):
    assert sefa_names.sefa_names(generator) == {}  # none shipped: the sliders say sefaK
    sefa_names.write_names(generator, {"sefa0": "hair length", "sefa3": "mouth open"}, shipped_directions())
    names = sefa_names.sefa_names(generator)
    assert names == {"sefa0": "hair length", "sefa3": "mouth open"}
    assert sefa_names.label("sefa3", names) == "sefa3 · mouth open" and sefa_names.label("sefa1", names) == "sefa1"
    with torch.no_grad():
        generator.blocks[1].convs[0].conv.style.weight.mul_(3)  # other weights: other directions
    assert sefa_names.sefa_names(generator) == {}


@pytest.mark.parametrize("names, message", [
    ({"hair-blue": "blue"}, "only sefa0"),
    ({"sefa0": "wide, tall"}, "without , or :"),
    ({"sefa0": ""}, "1 to"),
    ({"sefa0": "Mouth", "sefa1": "mouth"}, "share the name"),
])
def test_bad_names_are_refused(generator, tmp_path, names, message):
    with pytest.raises(ValueError, match=message):
        sefa_names.write_names(generator, names, tmp_path)


def test_cli_takes_a_shipped_name_and_the_recipe_keeps_sefa_k(generator, tmp_path, capsys):
    sefa_names.write_names(generator, {"sefa2": "mouth open"}, shipped_directions())
    png = tmp_path / "face.png"
    assert main(["lab", "--seed", "3", "--direction", "Mouth open:-1", "--scale", "1", "-o", str(png)]) == 0
    assert "dir=sefa2:-1" in capsys.readouterr().out
    assert np.array_equal(pixels(Image.open(png)), pixels(render(Recipe(3, directions={"sefa2": -1.0}))))
    assert main(["lab", "--seed", "3", "--sheet", "sefa1,sefa2", "--scale", "1", "-o", str(tmp_path / "sheet.png")]) == 0
    assert "rows: sefa1, sefa2 · mouth open" in capsys.readouterr().out


def test_strips_show_each_direction_on_every_seed(generator, tmp_path):
    weights = tmp_path / "weights"
    assert sefa_names.main(["--weights", str(weights), "--strips", str(tmp_path / "strips"), "--seeds", "1,2", "--scale", "1"]) == 0
    files = sorted((tmp_path / "strips").iterdir())
    assert [f.name for f in files] == sorted(f"sefa{k}.png" for k in range(SEFA_COUNT))
    strip = pixels(Image.open(tmp_path / "strips" / "sefa0.png"))
    assert strip.shape[:2] == (2 * 16 + 2, 5 * 16 + 4 * 2)  # a row per seed, a column per step
    middle = strip[18:34, 2 * 18:2 * 18 + 16]  # seed 2 at step 0: the face itself
    assert np.array_equal(middle, pixels(render(Recipe(2, 0.7))))
    assert not np.array_equal(strip[18:34, :16], middle)


def test_names_are_shipped_with_their_weights_only(generator, tmp_path):
    with pytest.raises(SystemExit):
        sefa_names.main(["--weights", str(tmp_path / "weights"), "--name", "sefa1=hair length"])
    assert sefa_names.main(["--weights", str(tmp_path / "weights"), "--ship", str(tmp_path / "weights"), "--name", 'sefa1="hair length"']) == 0
    assert sefa_names.sefa_names(tiny_generator()) == {"sefa1": "hair length"}  # the same weights, loaded anew
