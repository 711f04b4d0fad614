"""The cartoonizer's bfloat16 inference stays within a stated tolerance of float32."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cartoon.hub import load_model
from cartoon.runtime import INFERENCE_TOLERANCE, cpu_has_bf16
from cartoon.whitebox import cartoonize

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def photo():
    image = Image.open(EXAMPLE).convert("RGB")
    return image.resize((256, 256 * image.height // image.width))


def test_bf16_cartoon_is_within_tolerance_of_float32(photo, monkeypatch):
    model = load_model("whitebox", device="cpu", hub=False)
    fast = np.asarray(cartoonize(photo, model=model), dtype=np.int16)
    monkeypatch.setenv("CARTOON_PRECISION", "fp32")
    exact = np.asarray(cartoonize(photo, model=model), dtype=np.int16)
    difference = np.abs(fast - exact)
    assert difference.max() <= round(INFERENCE_TOLERANCE * 255)
    if cpu_has_bf16():  # bf16 really ran: its rounding shows somewhere
        assert difference.max() > 0
    else:  # no native bf16: float32 throughout
        assert difference.max() == 0
