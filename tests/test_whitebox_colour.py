"""The optional colour step of the white-box cartoonizer: the photo's hues come back at a coarse
scale, the cartoon keeps its own luminance and lines, and nothing changes unless asked."""

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon.images import to_image, to_tensor
from cartoon.runtime import inference_autocast
from cartoon.whitebox import STYLES, cartoonize
from cartoon.whitebox.colour import chroma, keep_photo_colour, luma, rgb
from cartoon.whitebox.model import Generator

pytestmark = pytest.mark.usefixtures("one_thread")


def two_colour_photo(height=64, width=96):
    """Pink on the left, pale yellow on the right, in [-1, 1]."""
    photo = torch.empty(1, 3, height, width)
    photo[..., : width // 2] = torch.tensor([0.6, 0.0, 0.2]).view(1, 3, 1, 1)
    photo[..., width // 2 :] = torch.tensor([0.5, 0.4, -0.1]).view(1, 3, 1, 1)
    return photo


def pulled_toward_orange(photo):
    """The photo's luminance, its chroma moved by a fixed orange offset, and a dark line drawn."""
    y = luma(photo)
    cartoon = rgb(y, chroma(photo, y) + torch.tensor([-0.08, 0.06]).view(1, 2, 1, 1))
    cartoon[..., 10:12, :] = -0.9
    return cartoon


def test_ycbcr_round_trip_is_exact():
    images = torch.rand(2, 3, 5, 7) * 2 - 1
    y = luma(images)
    assert torch.allclose(rgb(y, chroma(images, y)), images, atol=1e-6)


def test_hues_come_back_while_luminance_and_lines_stay_the_cartoons():
    photo = two_colour_photo()
    cartoon = pulled_toward_orange(photo)
    kept = keep_photo_colour(photo, cartoon)
    away_from_line = (..., slice(14, None), slice(None))  # nothing there leaves the RGB cube
    assert torch.allclose(luma(kept)[away_from_line], luma(cartoon)[away_from_line], atol=1e-5)
    inside = (..., slice(24, 56), slice(8, 40))  # the pink region away from the line and the border
    drift_before = (chroma(cartoon, luma(cartoon)) - chroma(photo, luma(photo)))[inside].abs().mean()
    drift_after = (chroma(kept, luma(kept)) - chroma(photo, luma(photo)))[inside].abs().mean()
    assert drift_after < 0.1 * drift_before
    assert (kept[..., 10:12, :] < -0.7).all()  # the drawn line stays dark


def test_a_cartoon_in_the_photos_colours_is_left_alone():
    photo = torch.rand(1, 3, 40, 52) * 2 - 1
    cartoon = (photo + 0.3).clamp(-1, 1) * 0.8  # other luminance, same hue everywhere but the clamps
    cartoon = rgb(luma(cartoon), chroma(photo, luma(photo)))
    assert torch.allclose(keep_photo_colour(photo, cartoon), cartoon.clamp(-1, 1), atol=1e-4)


@pytest.mark.parametrize("height, width", [(300, 170), (33, 17), (1, 1)])
def test_any_size_comes_back_in_range(height, width):
    photo, cartoon = (torch.rand(1, 3, height, width) * 2 - 1 for _ in range(2))
    kept = keep_photo_colour(photo, cartoon)
    assert kept.shape == cartoon.shape and kept.abs().max() <= 1


def test_cartoonize_corrects_colour_as_the_style_says_unless_told():
    torch.manual_seed(0)
    model = Generator(channels=4, blocks=1).eval()
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8))
    with torch.inference_mode(), inference_autocast(torch.device("cpu")):  # as cartoonize runs it
        raw = np.asarray(to_image(model(to_tensor(photo).contiguous(memory_format=torch.channels_last)).float().clamp(-1, 1)))
    corrected = np.asarray(cartoonize(photo, model=model, keep_colour=True))
    for name, style in STYLES.items():
        assert np.array_equal(np.asarray(cartoonize(photo, style=name, model=model)), corrected if style.keep_colour else raw)
    assert np.array_equal(np.asarray(cartoonize(photo, model=model, keep_colour=False)), raw)
    assert not np.array_equal(np.asarray(cartoonize(photo, model=model, keep_colour=True)), raw)


def test_keeping_the_luminance_too_brings_back_a_brightness_drift_but_not_the_cartoons_lines():
    torch.manual_seed(0)
    photo = torch.full((1, 3, 128, 128), -0.2)
    cartoon = photo + 0.3  # a cartoon that lightened everything evenly…
    cartoon[..., 60:62, :] = -0.6  # …and drew a dark line across
    colour_only, with_luma = keep_photo_colour(photo, cartoon), keep_photo_colour(photo, cartoon, luma_radius=12)
    away_from_line = (slice(None), slice(None), slice(10, 40), slice(None))
    assert torch.allclose(colour_only[away_from_line], cartoon[away_from_line], atol=1e-4)  # the colour alone keeps the lightening
    assert torch.allclose(with_luma[away_from_line], photo[away_from_line], atol=0.02)  # the luminance too takes it back
    drawn, kept = (image[..., 59, 64] - image[..., 61, 64] for image in (cartoon, with_luma))
    assert torch.allclose(kept, drawn, atol=0.05)  # the line stays as dark against its fill as the cartoon drew it


def test_cartoonize_hands_the_luminance_radius_to_the_correction():
    torch.manual_seed(0)
    model = Generator(channels=4, blocks=1).eval()
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    with torch.inference_mode(), inference_autocast(torch.device("cpu")):
        cartoon = model(to_tensor(photo).contiguous(memory_format=torch.channels_last)).float().clamp(-1, 1)
        expected = np.asarray(to_image(keep_photo_colour(to_tensor(photo), cartoon, luma_radius=3)))
    with_luma = np.asarray(cartoonize(photo, model=model, keep_colour=True, luma_radius=3))
    assert np.array_equal(with_luma, expected)
    assert not np.array_equal(with_luma, np.asarray(cartoonize(photo, model=model, keep_colour=True)))


@pytest.mark.parametrize("radius", [0, -2])
def test_a_luminance_radius_below_one_is_refused(radius):
    photo = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ValueError, match="luma_radius"):
        keep_photo_colour(photo, photo, luma_radius=radius)


def test_evaluate_refuses_a_luminance_radius_without_the_colour_or_below_one():
    from cartoon.whitebox.evaluate import parse_args

    assert parse_args(["--keep-colour", "--keep-luma", "32"]).keep_luma == 32
    for argv in (["--keep-luma", "32"], ["--keep-colour", "--keep-luma", "0"]):
        with pytest.raises(SystemExit):
            parse_args(argv)
