"""Process-level settings for serving the app.

Malloc arenas: glibc gives each thread that allocates concurrently its own malloc arena and
rarely returns their memory. Gradio runs handlers on a pool of worker threads, so under load every
thread grows an arena of torch/PIL buffers: bench/load.py measured the server's resident memory
growing by 91% over 160 requests with the default, and by 40–53% with two arenas, all of it in the
first concurrent round (the second round: −2.5% to +7.6%).

Atomic image cache: Gradio 6.31 writes every output image to a path named by the hash of its
bytes, rewriting the file in place each time. Two requests with the same result (two visitors
clicking the same example) then race: one rewrites the file while the other's client downloads
it, and that download breaks off ("peer closed connection without sending complete message
body"; 13 of 64 requests in a 20-line Gradio app returning one fixed image from 8 threads).
Gradio already writes copies of files through a temporary name and a rename; images get the same.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tempfile
from pathlib import Path

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas (same as MALLOC_ARENA_MAX=count); False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return False
    return bool(mallopt(M_ARENA_MAX, count))


def atomic_gradio_image_cache() -> None:
    """Make Gradio's output-image cache write through a temporary file and an atomic rename."""
    from gradio import processing_utils

    if getattr(processing_utils.save_pil_to_cache, "atomic", False):
        return

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = processing_utils.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / processing_utils.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        target = (folder / f"{name}.{format}").resolve()
        handle, staging = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(staging, target)  # a reader holds the old, complete file or the new one
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
        return str(target)

    save_pil_to_cache.atomic = True
    processing_utils.save_pil_to_cache = save_pil_to_cache
