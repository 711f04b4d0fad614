"""Whatever a user uploads becomes a bounded RGB image or a clear ImageError."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon.images import ImageError, list_images, open_image, to_image, to_tensor
from cartoon.inception import as_uint8, from_uint8


def encoded(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def gradient(size=(96, 64), mode="RGB"):
    x = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :].repeat(size[1], 0)
    return Image.fromarray(np.stack([x, x[::-1], np.full_like(x, 128)], -1)).convert(mode)


def noise(size=(200, 150)):
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (encoded(noise(), "PNG")[:2000], "damaged"),
        (encoded(noise(), "JPEG")[:1500], "damaged"),
    ],
    ids=["zero-bytes", "text", "truncated-png", "truncated-jpeg"],
)
def test_unreadable_bytes_raise_clear_error(data, message):
    with pytest.raises(ImageError, match=message):
        open_image(data)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ImageError, match="No such file"):
        open_image(tmp_path / "missing.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        open_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="No image"):
        open_image(None)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "L", "1", "I;16", "I", "F"])
def test_every_mode_becomes_rgb(mode):
    source = gradient(mode="L") if mode in ("I;16", "I", "F") else gradient()
    image = source.convert(mode) if mode not in ("I;16",) else Image.fromarray(np.asarray(source, np.uint16) * 257)
    loaded = open_image(image)
    assert loaded.image.mode == "RGB"
    assert loaded.image.size == (96, 64)
    # the gradient survives the conversion: left edge dark, right edge bright in the first channel
    pixels = np.asarray(loaded.image, dtype=int)
    assert pixels[:, -1].mean() > pixels[:, 0].mean() + 50 or mode == "1"


def test_transparency_is_filled_white_and_said():
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    loaded = open_image(encoded(rgba, "PNG"))
    assert np.asarray(loaded.image)[0, 0].tolist() == [255, 255, 255]
    assert any("Transparent" in note for note in loaded.notes)


def test_sixteen_bit_png_keeps_its_range():
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    loaded = open_image(encoded(Image.fromarray(ramp), "PNG"))
    pixels = np.asarray(loaded.image)
    assert pixels.min() <= 2 and pixels.max() >= 250


def test_huge_photo_is_downscaled_and_said():
    big = Image.new("RGB", (12000, 9000), (40, 90, 200))
    loaded = open_image(encoded(big, "JPEG", quality=50), max_side=1024)
    assert max(loaded.image.size) == 1024
    assert loaded.image.size == (1024, 768)
    assert any("12000×9000" in note for note in loaded.notes)


def test_tiny_image_is_upscaled_and_said():
    loaded = open_image(encoded(gradient((16, 16)), "PNG"))
    assert min(loaded.image.size) >= 32
    assert any("small" in note for note in loaded.notes)


def test_exif_rotation_is_applied():
    wide = gradient((80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    loaded = open_image(encoded(wide, "JPEG", exif=exif.tobytes()))
    assert loaded.image.size == (40, 80)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (48, 48), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = open_image(data)
    red, green, blue = np.asarray(loaded.image)[24, 24]
    assert red > 200 and green < 50 and blue < 50
    assert any("first frame" in note for note in loaded.notes)


def test_arrays_of_any_dtype():
    floats = np.random.default_rng(0).random((40, 50, 3))
    assert open_image(floats).image.size == (50, 40)
    assert open_image((floats * 65535).astype(np.uint16)).image.mode == "RGB"
    with pytest.raises(ImageError):
        open_image(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ImageError):
        open_image(np.zeros((4, 4, 7), np.uint8))


def test_tensor_round_trip_is_exact():
    image = gradient()
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 64, 96) and tensor.min() >= -1 and tensor.max() <= 1
    assert np.array_equal(np.asarray(to_image(tensor)), np.asarray(image))


def test_uint8_batches_round_trip_exactly():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).repeat(2, 3, 1, 1)
    scaled = from_uint8(pixels)
    assert scaled.min() == -1 and scaled.max() == 1
    assert torch.equal(as_uint8(scaled), pixels)


def test_list_images_expands_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["a.jpg", "sub/b.PNG", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images([tmp_path])] == ["a.jpg", "b.PNG"]
    with pytest.raises(ImageError, match="No such"):
        list_images([tmp_path / "nope"])
