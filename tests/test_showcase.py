"""The card's side-by-side: held-out faces of every group, photo then each model, the same every time."""

import numpy as np
import torch
from PIL import Image, ImageOps

from cartoon import data
from cartoon.showcase import CELL, GROUPS, held_out_portraits, side_by_side, transform_for
from cartoon.whitebox import STYLES, cartoonize
from cartoon.whitebox.model import Generator


def test_portraits_are_held_out_and_fit_their_rows():
    rows = held_out_portraits()
    assert list(rows) == list(GROUPS)
    assert all(len(paths) == 4 for paths in rows.values())
    held_out = set(data.split(data.UTKFACE)[1]) | set(data.split(data.SELFIE_PHOTOS)[1])
    everyone = [path for paths in rows.values() for path in paths]
    assert set(everyone) <= held_out and len(set(everyone)) == len(everyone)
    for group, paths in rows.items():
        for path in paths:
            if path.parent == data.UTKFACE:
                person = data.utkface_attributes(path)
                assert {"children": person["age"] < 13, "older": person["age"] >= 60,
                        "men": 20 <= person["age"] < 60 and person["gender"] == "male",
                        "women": 20 <= person["age"] < 60 and person["gender"] == "female"}[group]
    # both sexes among the children and the older people, and more than one race label per row
    for group in ("children", "older"):
        assert len({data.utkface_attributes(p)["gender"] for p in rows[group]}) == 2
    for group in GROUPS:
        assert len({data.utkface_attributes(p)["race"] for p in rows[group] if p.parent == data.UTKFACE}) >= 2
    assert rows == held_out_portraits()


def test_side_by_side_puts_each_models_picture_after_its_photo():
    sheet = side_by_side({"mirror": ImageOps.mirror, "grey": lambda photo: photo.convert("L").convert("RGB")}, per_group=2)
    assert isinstance(sheet, Image.Image)
    # 2 faces × (photo + 2 models) cells per row, plus the group-name margin
    assert sheet.width >= 6 * CELL
    photo = Image.open(held_out_portraits(2)["men"][0]).convert("RGB").resize((256, 256), Image.BICUBIC)
    expected_grey = photo.convert("L").convert("RGB").resize((CELL, CELL), Image.BICUBIC)
    # find the first row's grey cell: right after the photo and its mirror
    header = 22 + 6
    left = 70 + 2 * (CELL + 2)
    cell = sheet.crop((left, header, left + CELL, header + CELL))
    assert list(cell.getdata())[: CELL * 4] == list(expected_grey.getdata())[: CELL * 4]


def test_a_styles_own_folder_is_drawn_as_the_tab_draws_it_and_any_other_as_its_generator_alone(tmp_path):
    torch.manual_seed(0)
    model = Generator(channels=4, blocks=1).eval()
    for name in ("whitebox-cel", "whitebox", "candidate"):
        model.save_pretrained(tmp_path / name)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    kept, raw = (np.asarray(cartoonize(photo, model=model, keep_colour=keep)) for keep in (True, False))
    assert not np.array_equal(kept, raw)
    keeps = {style.model: style.keep_colour for style in STYLES.values()}
    assert keeps["whitebox-cel"] and not keeps["whitebox"]  # the cel style keeps the photo's colours, the anime-portrait one not
    for name, keep in {**keeps, "candidate": False}.items():
        drawn = np.asarray(transform_for("whitebox", str(tmp_path / name))(photo))
        assert np.array_equal(drawn, kept if keep else raw), name
    for forced, expected in ((True, kept), (False, raw)):  # --keep-colour on / off: every folder alike
        for name in ("whitebox-cel", "candidate"):
            assert np.array_equal(np.asarray(transform_for("whitebox", str(tmp_path / name), forced)(photo)), expected), (name, forced)
