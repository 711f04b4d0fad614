"""What every generator shares: noise interpolation, crisp upscaling, grids, GIF/MP4 export, recipe text."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from cartoon.latent import lerp, slerp
from cartoon.media import grid, save_gif, save_video, strip, upscale, video_encoder
from cartoon.recipes import finite_number, split_recipe, whole_number


def random_faces(count):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(count)]


def test_slerp_and_lerp_endpoints_are_the_inputs():
    # fixed inputs: lerp's a + (b - a) * 1 misses an element of b near zero by more than allclose's
    # absolute tolerance for about one draw in five, which made this test depend on the tests before it
    stream = torch.Generator().manual_seed(0)
    a, b = torch.randn(128, generator=stream), torch.randn(128, generator=stream) * 0.5
    for blend in (slerp, lerp):
        assert torch.allclose(blend(a, b, 0.0), a) and torch.allclose(blend(a, b, 1.0), b)
    middle = slerp(a, b, 0.5)
    assert torch.isclose(middle.norm(), (a.norm() + b.norm()) / 2, rtol=1e-4)  # no norm dip, unlike lerp
    assert lerp(a, b, 0.5).norm() < middle.norm()
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel inputs fall back to a line


def test_gif_and_mp4_export(tmp_path):
    frames = random_faces(6)
    gif = Image.open(save_gif(frames, tmp_path / "m.gif", fps=10, scale=2))
    assert gif.n_frames == 6 and gif.size == (128, 128)
    assert video_encoder() is not None  # imageio-ffmpeg's wheel bundles an ffmpeg binary
    mp4 = save_video(frames, tmp_path / "m.mp4", fps=10, scale=4)
    video = iio.imread(mp4)
    assert video.shape[0] == 6 and video.shape[1:3] == (256, 256)


def test_display_upscale_is_sharp_and_grid_tiles():
    face = random_faces(1)[0]
    big = np.asarray(upscale(face, 4))
    assert big.shape == (256, 256, 3) and np.array_equal(big[::4, ::4], np.asarray(face))
    assert np.array_equal(big[1::4, 2::4], np.asarray(face))  # every 4×4 block is one source pixel
    assert grid([face] * 5, gap=2).size == (3 * 64 + 4, 2 * 64 + 2)
    assert strip([face] * 30, count=12).size == (12 * 64 + 22, 64)
    with pytest.raises(ValueError):
        upscale(face, 0)


def test_recipe_text_splits_into_a_version_and_fields():
    heads = {"style:v1": 1, "style:v2": 2}
    assert split_recipe(" style:v2 ; seed = 7 ;; mix=0.5;", heads) == (2, {"seed": "7", "mix": "0.5"})
    assert whole_number("seed", "7") == 7 and finite_number("mix", "0.5") == 0.5
    with pytest.raises(ValueError, match="'style:v1' or 'style:v2'"):
        split_recipe("acgan:v2;seed=7", heads)
    with pytest.raises(ValueError, match="twice"):
        split_recipe("style:v1;seed=1;seed=2", heads)
