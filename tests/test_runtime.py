"""Serving settings: the atomic image cache never exposes a half-written file; malloc arenas capped; freed heap returned;
model work on a fixed pool of inference threads."""

import contextvars
import inspect
import platform
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio import processing_utils
from PIL import Image

from cartoon.acgan import LATEST
from cartoon.runtime import INFERENCE_THREADS, atomic_gradio_image_cache, limit_malloc_arenas, on_inference_threads, trim_malloc

IMAGE = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))


@pytest.fixture
def gradio_original(monkeypatch):
    """The unpatched function; the module attribute is restored after the test."""
    original = processing_utils.save_pil_to_cache
    monkeypatch.setattr(processing_utils, "save_pil_to_cache", original)
    return original


def test_same_path_and_bytes_as_gradio(gradio_original, tmp_path):
    expected = Path(gradio_original(IMAGE, str(tmp_path / "a"), format="png"))
    atomic_gradio_image_cache()
    saved = Path(processing_utils.save_pil_to_cache(IMAGE, str(tmp_path / "b"), format="png"))
    assert saved.relative_to(tmp_path / "b") == expected.relative_to(tmp_path / "a")
    assert saved.read_bytes() == expected.read_bytes()
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no staging file left behind


def partial_reads(save, cache: Path) -> int:
    """Rewrite one image from 4 threads while a reader checks it; count incomplete reads."""
    path = Path(save(IMAGE, str(cache), format="png"))
    size = path.stat().st_size
    stop, partial = threading.Event(), []

    def read():
        while not stop.is_set():
            partial.append(len(path.read_bytes()) != size)

    def write():
        for _ in range(40):
            save(IMAGE, str(cache), format="png")

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write) for _ in range(4)]
    reader.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stop.set()
    reader.join()
    return sum(partial)


def test_a_reader_never_sees_a_half_written_image(gradio_original, tmp_path):
    atomic_gradio_image_cache()
    assert partial_reads(processing_utils.save_pil_to_cache, tmp_path) == 0


def test_malloc_arenas_are_capped_where_glibc_is():
    assert limit_malloc_arenas(2) is sys.platform.startswith("linux")  # elsewhere: a no-op, said so


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's (and /proc Linux's)")
def test_trimming_returns_freed_heap_memory():
    # 100 KB blocks stay below glibc's mmap threshold, so they come from the heap; keeping the last
    # one alive pins the heap's top, so freeing the rest returns nothing until something trims
    blocks = [bytearray(b"x" * 100_000) for _ in range(2000)]
    last = blocks.pop()
    held = resident_mb()
    blocks.clear()
    before_trim = resident_mb()
    assert trim_malloc()
    assert before_trim - resident_mb() > 0.5 * 200  # most of the freed 200 MB went back
    assert held - before_trim < 0.5 * 200 and len(last) == 100_000


def test_handlers_called_from_many_threads_run_on_the_few_inference_threads():
    callers, runners = set(), set()

    @on_inference_threads
    def handler(n):
        runners.add(threading.get_ident())
        return n * n

    def call(n):
        callers.add(threading.get_ident())
        return handler(n)

    with ThreadPoolExecutor(12) as pool:  # like Gradio's worker pool: many threads over time
        assert list(pool.map(call, range(48))) == [n * n for n in range(48)]
    assert 1 <= len(runners) <= INFERENCE_THREADS and not runners & callers


REQUEST = contextvars.ContextVar("request")


def test_inference_threads_keep_what_gradio_relies_on():
    def handler(text, progress=None):
        """Doc."""
        if text == "bad":
            raise ValueError("a message for the user")
        return REQUEST.get()

    wrapped = on_inference_threads(handler)
    assert inspect.signature(wrapped) == inspect.signature(handler) and wrapped.__name__ == "handler"
    REQUEST.set("event 7")  # gr.Progress finds its event through context variables like this one
    assert wrapped("good") == "event 7"
    with pytest.raises(ValueError, match="a message for the user"):
        wrapped("bad")


def test_a_handler_calling_another_on_the_pool_does_not_wait_for_a_free_thread():
    inner = on_inference_threads(lambda: threading.current_thread().name)
    outer = on_inference_threads(lambda: (threading.current_thread().name, inner()))
    with ThreadPoolExecutor(2 * INFERENCE_THREADS) as pool:  # every pool thread busy in `outer` at once
        jobs = [pool.submit(outer) for _ in range(2 * INFERENCE_THREADS)]
        for job in jobs:
            outer_name, inner_name = job.result(timeout=60)  # a deadlock would never return
            assert outer_name == inner_name and outer_name.startswith("inference")


def test_the_apps_model_handlers_run_on_the_inference_threads(monkeypatch):
    import app
    import cartoon.acgan

    seen = []

    def recording_avatars(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return drawn(*args, **kwargs)

    drawn = cartoon.acgan.avatars
    monkeypatch.setattr(cartoon.acgan, "avatars", recording_avatars)  # the tab imports it when built
    draw = next(block.fn for block in app.build_app().fns.values() if block.api_name == "avatars")
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda seed: draw("blue", "red", seed, 1, 0.8, 1), range(6)))
    assert [result[3] for result in results] == [f"acgan:v{LATEST};hair=blue;eyes=red;seed={seed};n=1;trunc=0.8" for seed in range(6)]
    assert len(seen) == 6 and all(name.startswith("inference") for name in seen)


def test_the_apps_model_events_share_one_queue_group_of_the_pools_size():
    import app

    pooled = on_inference_threads(lambda: None).__code__  # the wrapper every pooled handler shares
    events = list(app.build_app().fns.values())
    model_events = [event for event in events if getattr(event.fn, "__code__", None) is pooled]
    other_events = [event for event in events if event not in model_events]
    assert {event.api_name for event in model_events} >= {"cartoonize", "anime", "lookalikes", "avatars", "avatars_recipe", "morph", "walk"}
    assert {event.concurrency_id for event in model_events} == {"inference"}
    assert {event.concurrency_limit for event in model_events} == {INFERENCE_THREADS}
    assert other_events and all(event.concurrency_id != "inference" for event in other_events)
