"""Process-level settings for serving the app.

Malloc arenas: glibc gives each thread that allocates concurrently its own malloc arena and
rarely returns their memory. Gradio runs handlers on a pool of worker threads, so under load every
thread grows an arena of torch/PIL buffers: bench/load.py measured the server's resident memory
growing by 91% over 160 requests with the default, and by 40–53% with two arenas, all of it in the
first concurrent round (the second round: −2.5% to +7.6%).

Trimming: even with two arenas, memory a request frees stays in glibc's heap (free chunks in the
middle of an arena are not handed back), so the server's resident memory sits at the high-water
mark of the busiest moment. `malloc_trim(0)` returns every free page of every arena to the system;
a daemon thread calls it every few seconds. bench/load.py, 16 clients × 4 requests, same
session, resident memory after the load vs after the warm-up: +46% without trimming, +14% with it
(readings after 10 s idle; the second round adds nothing further in either case).

Inference threads: Gradio calls a handler on whichever thread of its AnyIO worker pool (up to 40)
is free, and its queue limits concurrency per endpoint, not across endpoints, so under a mixed
load the model code ran on a dozen or more different threads. Every thread that runs torch ops
keeps native buffers of its own for as long as it lives (they are not Python objects and not
freed heap, so neither tracemalloc nor trimming sees them): the models called in-process on a new
thread per call, two at a time, grew resident memory from 791 to 976 MB over 20 calls and to 1098
MB over 20 more (45 threads), against 793 → 847 → 847 MB when the same calls all ran on two fixed
threads. The same held with OpenMP at one thread (803 → 996 MB), so it is per calling thread, not
OpenMP's thread teams. `on_inference_threads` therefore runs handlers on one small fixed pool;
the Gradio worker thread only waits for the result. The pool also bounds model work to
INFERENCE_THREADS at a time across all endpoints, which is what a 2-core machine can serve.

Atomic image cache: Gradio 6.31 writes every output image to a path named by the hash of its
bytes, rewriting the file in place each time. Two requests with the same result (two visitors
clicking the same example) then race: one rewrites the file while the other's client downloads
it, and that download breaks off ("peer closed connection without sending complete message
body"; 13 of 64 requests in a 20-line Gradio app returning one fixed image from 8 threads).
Gradio already writes copies of files through a temporary name and a rename; images get the same.
"""

from __future__ import annotations

import contextvars
import ctypes
import ctypes.util
import functools
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
INFERENCE_THREADS = 2  # model work at a time, across all endpoints: one per CPU core here
INFERENCE_THREAD_NAME = "inference"

_on_pool = threading.local()


def _mark_inference_thread():
    _on_pool.inside = True


_inference_pool = ThreadPoolExecutor(INFERENCE_THREADS, INFERENCE_THREAD_NAME, initializer=_mark_inference_thread)


def on_inference_threads(handler):
    """`handler`, run on the fixed pool of INFERENCE_THREADS threads; the calling thread waits.

    The signature is kept (functools.wraps), so Gradio still sees `progress=gr.Progress()` and
    event-data parameters; the caller's context variables go along, which is how gr.Progress finds
    its event. A wrapped handler called from another one already on the pool runs in place, since
    waiting for a second pool thread there could deadlock.
    """

    @functools.wraps(handler)
    def run_on_pool(*args, **kwargs):
        if getattr(_on_pool, "inside", False):
            return handler(*args, **kwargs)
        return _inference_pool.submit(contextvars.copy_context().run, handler, *args, **kwargs).result()

    return run_on_pool


@functools.lru_cache(maxsize=None)  # find_library runs `ldconfig -p`: once per process, not every trim
def _glibc_function(name: str):
    """A function of the C library by name, or None where it is not glibc (macOS, musl)."""
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas (same as MALLOC_ARENA_MAX=count); False where there is no glibc."""
    mallopt = _glibc_function("mallopt")
    return bool(mallopt and mallopt(M_ARENA_MAX, count))


def trim_malloc() -> bool:
    """Return the free pages of every malloc arena to the system; False where there is no glibc."""
    malloc_trim = _glibc_function("malloc_trim")
    return malloc_trim is not None and malloc_trim(0) in (0, 1)  # 1: memory released, 0: none to release


def trim_malloc_periodically(seconds: float = 5.0) -> threading.Thread | None:
    """Call `trim_malloc` every `seconds` from a daemon thread; None without glibc."""
    if _glibc_function("malloc_trim") is None:
        return None

    def trim():
        while True:
            time.sleep(seconds)
            trim_malloc()

    thread = threading.Thread(target=trim, name="malloc-trim", daemon=True)
    thread.start()
    return thread


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


PRECISIONS = ("fp32", "bf16")  # the number formats a model trains or draws in


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX-512 BF16 or AMX); elsewhere autocast only emulates it."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: assume emulation, which would be slower than float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def inference_autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """bfloat16 autocast for a conv model's inference on a CPU that computes it natively.

    bench/train_speed.py: the cartoonizer at 512² with bf16 and channels-last ran 1.6× faster
    than float32 on this project's 2-core machine, within INFERENCE_TOLERANCE of float32's pixels.
    CARTOON_PRECISION=fp32 turns it off.
    """
    wanted = enabled and device.type == "cpu" and cpu_has_bf16() and os.environ.get("CARTOON_PRECISION", "bf16") != "fp32"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=wanted)


INFERENCE_TOLERANCE = 2 / 255  # largest pixel difference from float32 allowed, on a 0–1 scale
