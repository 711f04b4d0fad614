"""White-box generator and guided filter: exact filtering, any input size, Hub round-trip, inference API."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon.whitebox import cartoonize
from cartoon.whitebox.guided_filter import box_mean, guided_filter
from cartoon.whitebox.model import Generator


def naive_guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s algorithm written out window by window, windows clipped at the border."""
    channels, height, width = source.shape

    def window(y, x):
        return slice(max(0, y - radius), y + radius + 1), slice(max(0, x - radius), x + radius + 1)

    slope = np.zeros_like(source)
    offset = np.zeros_like(source)
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                g, s = guide[c][window(y, x)], source[c][window(y, x)]
                a = ((g * s).mean() - g.mean() * s.mean()) / (g.var() + eps)
                slope[c, y, x], offset[c, y, x] = a, s.mean() - a * g.mean()
    result = np.zeros_like(source)
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                result[c, y, x] = slope[c][window(y, x)].mean() * guide[c, y, x] + offset[c][window(y, x)].mean()
    return result


@pytest.mark.parametrize("radius, eps", [(1, 1e-2), (2, 0.2), (5, 5e-3)])
def test_guided_filter_matches_the_naive_definition(radius, eps):
    generator = torch.Generator().manual_seed(radius)
    guide = torch.rand(1, 2, 9, 13, generator=generator, dtype=torch.float64)
    source = torch.rand(1, 2, 9, 13, generator=generator, dtype=torch.float64)
    expected = naive_guided_filter(guide[0].numpy(), source[0].numpy(), radius, eps)
    np.testing.assert_allclose(guided_filter(guide, source, radius, eps)[0].numpy(), expected, atol=1e-10)


def test_box_mean_is_the_clipped_window_mean():
    image = torch.arange(20.0, dtype=torch.float64).view(1, 1, 4, 5)
    means = box_mean(image, 1)
    assert means[0, 0, 0, 0] == image[0, 0, :2, :2].mean()
    assert means[0, 0, 2, 2] == image[0, 0, 1:4, 1:4].mean()


def test_guided_filter_keeps_edges_and_flattens_texture():
    step = torch.zeros(1, 1, 32, 32)
    step[..., 16:] = 1.0
    noisy = step + 0.05 * torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    filtered = guided_filter(noisy, noisy, radius=3, eps=0.01)
    # the texture inside each half is reduced …
    assert filtered[..., 2:14].std() < 0.5 * noisy[..., 2:14].std()
    # … while the jump between the halves survives
    assert filtered[..., 18:].mean() - filtered[..., :14].mean() > 0.9


def test_guided_filter_computes_bfloat16_inputs_in_float32():
    generator = torch.Generator().manual_seed(0)
    guide = (torch.rand(1, 3, 16, 16, generator=generator) * 2 - 1).bfloat16()
    source = (torch.rand(1, 3, 16, 16, generator=generator) * 2 - 1).bfloat16()
    assert torch.equal(guided_filter(guide, source, 2, 5e-3), guided_filter(guide.float(), source.float(), 2, 5e-3))


def test_guided_filter_backpropagates():
    guide = torch.rand(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    source = torch.rand(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda g, s: guided_filter(g, s, 1, 1e-2), (guide, source))


@pytest.mark.parametrize("height, width", [(37, 53), (64, 64), (5, 7), (101, 30)])
def test_generator_takes_any_size(height, width):
    torch.manual_seed(0)
    photo = torch.rand(2, 3, height, width) * 2 - 1
    with torch.no_grad():
        cartoon = Generator(channels=4, blocks=1)(photo)
    assert cartoon.shape == photo.shape
    assert torch.isfinite(cartoon).all()


def test_generator_is_translation_consistent_inside_the_image():
    # padding happens on the bottom/right only, so the top-left of a larger image is processed
    # exactly like the same region of a size that needs no padding
    torch.manual_seed(0)
    model = Generator(channels=4, blocks=1).eval()
    photo = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        full, cropped = model(photo), model(photo[..., :62, :61])
    assert torch.allclose(full[..., :40, :40], cropped[..., :40, :40], atol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Generator(channels=8, blocks=2, eps=1e-2).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {"channels": 8, "blocks": 2, "radius": 1, "eps": 1e-2}
    assert (tmp_path / "model.safetensors").is_file()
    loaded = Generator.from_pretrained(str(tmp_path)).eval()
    photo = torch.rand(1, 3, 24, 40) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(photo), loaded(photo))


def test_cartoonize_strength_blends_photo_and_cartoon():
    torch.manual_seed(0)
    model = Generator(channels=4, blocks=1).eval()
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8))
    none, half, full = (np.asarray(cartoonize(photo, s, model=model), dtype=float) for s in (0.0, 0.5, 1.0))
    assert none.shape == half.shape == full.shape == (30, 45, 3)
    assert np.array_equal(none, np.asarray(photo))
    assert np.abs(half - (none + full) / 2).max() <= 1.0  # rounding only
    with pytest.raises(ValueError, match="strength"):
        cartoonize(photo, 1.5, model=model)
