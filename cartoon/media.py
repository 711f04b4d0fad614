"""Pictures and animations made from generated faces, whichever generator drew them.

Small faces are enlarged with nearest-neighbour (`upscale`) so they stay crisp, tiled into
`grid`s and `strip`s, and written as GIF (`save_gif`) or MP4 (`save_video`, when `video_encoder`
finds imageio-ffmpeg's bundled ffmpeg).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def upscale(image: Image.Image, factor: int) -> Image.Image:
    """Nearest-neighbour enlargement: pixels stay crisp squares instead of blurring."""
    if not isinstance(factor, int) or not 1 <= factor <= 16:
        raise ValueError(f"display scale must be a whole number from 1 to 16, not {factor!r}")
    return image if factor == 1 else image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def grid(images: list[Image.Image], columns: int | None = None, gap: int = 2) -> Image.Image:
    """Images tiled in rows (about square unless `columns` is given) on a white background."""
    if not images:
        raise ValueError("no images to put in a grid")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    w, h = images[0].size
    sheet = Image.new("RGB", (columns * w + (columns - 1) * gap, rows * h + (rows - 1) * gap), "white")
    for i, image in enumerate(images):
        sheet.paste(image, ((i % columns) * (w + gap), (i // columns) * (h + gap)))
    return sheet


def strip(frames: list[Image.Image], count: int = 12, gap: int = 2) -> Image.Image:
    """Up to `count` evenly spaced frames (first and last included) side by side."""
    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    return grid([frames[i] for i in picks], columns=len(picks), gap=gap)


def save_gif(frames: list[Image.Image], path: str | Path, fps: int = 20, scale: int = 1, loop: bool = True) -> Path:
    """An animated GIF (PIL); each frame gets its own palette, which 64×64 faces need for their colours."""
    if not frames:
        raise ValueError("no frames to save")
    frames = [upscale(f, scale) for f in frames]
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0 if loop else 1, optimize=False, disposal=1)
    return path


def video_encoder() -> str | None:
    """Path of the ffmpeg binary bundled in the imageio-ffmpeg wheel (works offline), or None."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def save_video(frames: list[Image.Image], path: str | Path, fps: int = 20, scale: int = 4) -> Path:
    """An H.264 MP4 via imageio-ffmpeg's bundled ffmpeg; frames are upscaled (nearest) to a size players like."""
    if not frames:
        raise ValueError("no frames to save")
    if video_encoder() is None:
        raise RuntimeError("no video encoder: imageio-ffmpeg is not installed, use the GIF instead")
    import imageio_ffmpeg

    frames = [upscale(f, scale) for f in frames]
    path = Path(path)
    writer = imageio_ffmpeg.write_frames(
        str(path), frames[0].size, fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=8, macro_block_size=16, ffmpeg_log_level="error"
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(np.asarray(frame.convert("RGB"))))
    writer.close()
    return path
