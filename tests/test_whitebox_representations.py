"""White-box representations: the colouring rules and the targets the training losses compare against."""

import numpy as np
import torch

from cartoon.whitebox import representations as rep


def test_adaptive_colouring_paints_flat_regions_their_mean_and_busy_ones_their_median():
    image = np.zeros((4, 8, 3))
    labels = np.zeros((4, 8), dtype=int)
    labels[:, 4:] = 1
    # region 0: nearly flat, skewed so that its mean and median differ slightly
    image[:, :4] = 0.50
    image[0, 0] = 0.56
    # region 1: busy (std far above the threshold) with a skewed distribution
    busy = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.6])
    image[:, 4:] = busy.reshape(4, 4)[..., None]
    painted = rep.adaptive_colouring(image, labels)
    assert np.allclose(painted[:, :4], image[:, :4].mean(axis=(0, 1)))
    assert np.allclose(painted[:, 4:], np.median(busy))
    assert not np.isclose(np.median(busy), busy.mean())


def test_structure_paints_superpixels_in_flat_colours():
    torch.manual_seed(0)
    quadrants = torch.tensor([[-0.8, 0.2, 0.6], [0.5, -0.5, 0.0], [0.9, 0.9, -0.9], [-0.2, -0.7, 0.8]])
    image = torch.empty(2, 3, 48, 40)
    for i, (rows, cols) in enumerate([(slice(0, 24), slice(0, 20)), (slice(0, 24), slice(20, 40)),
                                      (slice(24, 48), slice(0, 20)), (slice(24, 48), slice(20, 40))]):
        image[:, :, rows, cols] = quadrants[i].view(1, 3, 1, 1)
    image += 0.05 * torch.randn_like(image)
    for method in ("slic", "felzenszwalb"):
        painted = rep.structure(image, method, segments=20)
        assert painted.shape == image.shape
        colours = torch.unique(painted[0].reshape(3, -1).T, dim=0)
        assert 4 <= len(colours) <= 60  # one colour per region, at least one region per quadrant
        # the noise is gone and each quadrant keeps its own colour
        top_left = painted[:, :, 4:20, 4:16]
        assert top_left.std(dim=(2, 3)).max() < 0.02
        assert (top_left.mean(dim=(2, 3)) - quadrants[0]).abs().max() < 0.05


def test_texture_uses_one_random_grey_for_all_batches():
    photo = torch.rand(2, 3, 8, 8) * 2 - 1
    generator = torch.Generator().manual_seed(0)
    first, second = rep.texture(photo, photo.clone(), generator=generator)
    assert first.shape == (2, 1, 8, 8)
    assert torch.equal(first, second)
    grey = torch.full((1, 3, 4, 4), 0.3)
    assert torch.allclose(rep.texture(grey)[0], torch.full((1, 1, 4, 4), 0.3))  # weights sum to 1


def test_surface_smooths():
    torch.manual_seed(0)
    noisy = torch.rand(1, 3, 32, 32) * 2 - 1
    assert rep.surface(noisy).std() < 0.7 * noisy.std()


def test_line_ink_darkens_only_thin_dark_lines_and_leaves_the_fills_flat():
    # a dark left fill and a bright right one (the structure map), and an image that adds to them
    flat = torch.zeros(1, 3, 32, 32)
    flat[..., 16:] = 0.5
    flat[..., 24:, :16] = -0.6  # a wide dark band, its own region
    image = flat.clone()
    line = torch.zeros(32, 32, dtype=torch.bool)
    line[2:20, 6] = True
    image[..., line] = -0.8  # a thin line far darker than its fill and its neighbours
    image[..., 2:20, 10] = -0.03  # a faint line, under the ink ramp
    image[..., 16:] += torch.linspace(-0.15, 0.15, 32).view(32, 1)  # smooth shading, darker than its fill at the top
    inked = rep.line_ink(flat, image)
    changed = (inked != flat).any(dim=1)[0]
    assert torch.equal(changed, line)  # not the faint line, the shading, the dark band or the fills' border
    assert torch.allclose(inked[..., line], torch.tensor(-0.6))  # the fill (0 → 0.5 on 0..1) × 0.4 → 0.2
    assert torch.equal(inked[..., ~line], flat[..., ~line])  # elsewhere the flat fills, untouched
    assert torch.equal(rep.line_ink(flat, image), inked)  # deterministic


def test_structure_takes_bfloat16_batches():
    image = torch.rand(2, 3, 24, 24) * 2 - 1
    painted = rep.structure(image.bfloat16(), "slic", segments=10)
    assert painted.dtype == torch.bfloat16
    # the superpixels of the bf16 batch are those of its float32 values, within bf16 rounding
    assert torch.allclose(painted.float(), rep.structure(image.bfloat16().float(), "slic", segments=10), atol=1e-2)


def test_standardised_grey_forgets_brightness_and_contrast_but_not_the_picture():
    torch.manual_seed(0)
    grey = torch.rand(2, 1, 16, 16) * 2 - 1
    pale = 0.3 * grey + 0.6  # the same picture, lighter and flatter
    same = rep.standardised_grey(grey)
    assert same.shape == (2, 3, 16, 16)
    torch.testing.assert_close(rep.standardised_grey(pale), same, rtol=0, atol=1e-5)
    assert torch.allclose(same.mean((2, 3)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(same.std((2, 3)), torch.full((2, 3), 0.5), atol=1e-4)
    assert not torch.allclose(rep.standardised_grey(grey.flip(3)), same)  # the layout is kept
