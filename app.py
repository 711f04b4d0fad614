"""Gradio shell: the tabs in order, the queue and the launch. Each tab lives in `cartoon.tabs`, model code in `cartoon`."""

from __future__ import annotations

import os

import gradio as gr

from cartoon.images import MAX_FILE_BYTES
from cartoon.runtime import INFERENCE_THREADS
from cartoon.tabs.anime import anime_tab
from cartoon.tabs.avatars import avatar_tab
from cartoon.tabs.cartoonize import cartoonize_tab
from cartoon.tabs.interpolate import interpolate_tab
from cartoon.tabs.lab import lab_tab
from cartoon.tabs.shared import EXAMPLES

TITLE = "Cartoon people"
INTRO = "Turn a photo into a cartoon or an anime character, or draw anime avatars. Everything runs on your CPU."


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs():
            cartoonize_tab()
            anime_tab()
            picked = avatar_tab()
            interpolate_tab(picked)
            lab_tab()
    # A full queue answers "busy" at once; model events share one limit through cartoon.tabs.shared.MODEL_QUEUE.
    demo.queue(default_concurrency_limit=INFERENCE_THREADS, max_size=32)
    return demo


if __name__ == "__main__":
    from cartoon.runtime import atomic_gradio_image_cache, limit_malloc_arenas, trim_malloc_periodically

    limit_malloc_arenas()  # worker threads otherwise each grow their own heap under load
    trim_malloc_periodically()  # and freed memory otherwise stays at the busiest moment's peak
    atomic_gradio_image_cache()  # two identical results at once otherwise break a download
    build_app().launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_FILE_BYTES,
        show_error=True,
        allowed_paths=[str(EXAMPLES)],
    )
