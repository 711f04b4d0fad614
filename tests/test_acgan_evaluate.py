"""The avatar evaluation: its side-by-side grid (every colour pair, each generator's faces from one
recipe), its within-pair diversity, per pair and compared pair by pair, and the truncation it reads at."""

from types import SimpleNamespace

import numpy as np
import torch

from cartoon.acgan import Recipe, avatars
from cartoon.acgan.evaluate import GRID_PAIRS, AttributeClassifier, PerceptualDistance, comparison_grid, evaluate, paired_difference
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


def test_diversity_per_pair_is_zero_for_repeated_faces_and_matches_the_pairwise_loop():
    torch.manual_seed(0)
    distance = PerceptualDistance()
    varied = torch.rand(4, 3, 32, 32) * 2 - 1
    images = torch.cat([varied[:1].repeat(3, 1, 1, 1), varied, torch.rand(1, 3, 32, 32)])
    hair, eyes = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2]), torch.tensor([5, 5, 5, 3, 3, 3, 3, 0])
    means = distance.pair_means(images, hair, eyes)
    assert set(means) == {(0, 5), (1, 3)}  # a pair of one face has no pairs to measure
    assert means[(0, 5)] < 1e-6 < means[(1, 3)]
    features = distance.features(varied)
    by_hand = np.mean([np.mean([float((f[i] - f[j]).pow(2).sum(0).mean()) for f in features])
                       for i in range(4) for j in range(i + 1, 4)])
    assert np.isclose(means[(1, 3)], by_hand, rtol=1e-5)


def test_paired_difference_reads_a_constant_shift_exactly_and_brackets_a_noisy_one():
    base = {f"{h},{e}": float(h + e) for h in range(12) for e in range(10)}
    shifted = {key: value + 0.25 for key, value in base.items()}
    exact = paired_difference(shifted, base)
    assert exact["pairs"] == 120 and np.isclose(exact["mean"], 0.25) and np.allclose(exact["interval"], 0.25)
    rng = np.random.default_rng(1)
    noisy = {key: value + 0.25 + rng.normal(0, 0.1) for key, value in base.items()}
    noisy.pop("0,0")  # only the pairs both have are compared
    reading = paired_difference(noisy, base)
    low, high = reading["interval"]
    assert reading["pairs"] == 119 and low < reading["mean"] < high and low < 0.25 < high and high - low < 0.1


def test_evaluate_draws_its_faces_at_the_truncation_asked_and_records_it():
    torch.manual_seed(0)
    generator, classifier = Generator(width=8, blocks=1).eval(), AttributeClassifier(width=4).eval()
    held = SimpleNamespace(images=torch.zeros(0, 3, 64, 64, dtype=torch.uint8), hair=torch.zeros(0), eyes=torch.zeros(0))
    readings = {trunc: evaluate(generator, classifier, held, per_pair=3, fid_samples=0, diversity_pairs=2, trunc=trunc, log=lambda _: None)
                for trunc in (0.0, 1.0)}
    # at 0 every face of a colour pair is drawn from the same (zero) noise, so the pair has no spread
    assert readings[0.0]["trunc"] == 0.0 and readings[1.0]["trunc"] == 1.0
    assert readings[0.0]["diversity_all_pairs"]["generated"] < 1e-6 < readings[1.0]["diversity_all_pairs"]["generated"]
