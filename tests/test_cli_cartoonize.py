"""`python -m cartoon cartoonize`: files and folders in, PNGs out, bad files skipped with a reason."""

import shutil

import pytest
from PIL import Image

from app import EXAMPLES
from cartoon.__main__ import main


def test_folder_is_cartoonized_and_bad_files_are_skipped(tmp_path, capsys):
    inputs = tmp_path / "in"
    (inputs / "nested").mkdir(parents=True)
    shutil.copy(EXAMPLES / "astronaut.jpg", inputs / "nested" / "astronaut.jpg")
    (inputs / "broken.png").write_bytes(b"not a png")
    assert main(["cartoonize", str(inputs), "-o", str(tmp_path / "out"), "--mode", "whole", "--max-side", "128"]) == 0
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["astronaut.png"]
    assert Image.open(written[0]).size == (128, 128)
    out = capsys.readouterr().out
    assert "1 of 2 images cartoonized" in out


def test_nothing_usable_is_an_error(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"")
    assert main(["cartoonize", str(tmp_path / "broken.jpg"), "-o", str(tmp_path / "out")]) == 1
    with pytest.raises(SystemExit, match="No such file"):
        main(["cartoonize", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="strength"):
        main(["cartoonize", str(tmp_path / "broken.jpg"), "-o", str(tmp_path / "out"), "--strength", "2"])
    with pytest.raises(SystemExit, match="strength"):
        main(["anime", str(tmp_path / "broken.jpg"), "-o", str(tmp_path / "out"), "--strength", "-1"])
    with pytest.raises(SystemExit, match="-o takes a folder"):
        main(["cartoonize", str(tmp_path / "broken.jpg"), "-o", str(tmp_path / "broken.jpg")])
    with pytest.raises(SystemExit, match="--max-side"):
        main(["anime", str(tmp_path / "broken.jpg"), "-o", str(tmp_path / "out"), "--max-side", "0"])


def test_missing_weights_are_named_not_a_traceback(tmp_path, monkeypatch):
    from cartoon.twingan import get_model

    monkeypatch.setenv("CARTOON_WEIGHTS_TWINGAN", str(tmp_path / "no-weights"))
    Image.new("RGB", (64, 64), "tan").save(tmp_path / "plain.png")
    get_model.cache_clear()
    try:
        with pytest.raises(SystemExit, match="no weights for 'twingan'"):
            main(["anime", str(tmp_path / "plain.png"), "-o", str(tmp_path / "out")])
        with pytest.raises(SystemExit, match="no weights for 'twingan'"):
            main(["lookalike", str(tmp_path / "plain.png")])
    finally:
        get_model.cache_clear()
