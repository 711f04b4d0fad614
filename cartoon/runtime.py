"""Process-level settings for serving the app.

glibc gives each thread that allocates concurrently its own malloc arena and rarely returns their
memory. Gradio runs handlers on a pool of worker threads, so under load every thread grows an
arena of torch/PIL buffers: bench/load.py measured the server's resident memory growing by 91%
over 160 requests with the default, and by 53% (7.6% in the second half) with two arenas.
"""

from __future__ import annotations

import ctypes
import ctypes.util

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
