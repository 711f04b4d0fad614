"""The avatar evaluation's side-by-side grid: every colour pair, each generator's faces from one recipe."""

import numpy as np
import torch

from cartoon.acgan import Recipe, avatars
from cartoon.acgan.evaluate import GRID_PAIRS, comparison_grid
from cartoon.acgan.model import Generator


def test_comparison_grid_puts_each_generator_beside_the_other_on_the_same_recipes():
    torch.manual_seed(0)
    first, second = Generator(width=8, blocks=1).eval(), Generator(width=8, blocks=1).eval()
    sheet = comparison_grid([first, second], faces=3)
    face, gap, between, row_gap = 64, 2, 12, 4
    half = 3 * face + 2 * gap
    assert sheet.size == (2 * half + between, len(GRID_PAIRS) * face + (len(GRID_PAIRS) - 1) * row_gap)
    pixels = np.asarray(sheet)
    hair, eyes = GRID_PAIRS[1]
    top = face + row_gap  # the second row
    for left, generator in ((0, first), (half + between, second)):
        expected = avatars(Recipe(hair, eyes, 7, 3, 0.8), generator)[0][2]
        x = left + 2 * (face + gap)
        assert np.array_equal(pixels[top:top + face, x:x + face], np.asarray(expected))
