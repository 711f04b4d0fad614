"""Gradio shell: the tabs and their wiring. Model code lives in the `cartoon` package."""

from __future__ import annotations

import os

import gradio as gr

TITLE = "Cartoon people"
INTRO = "Turn a photo into a cartoon or an anime character, or draw anime avatars. Everything runs on your CPU."


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs():
            pass  # each model family adds its tab here
    # Two requests at a time keep a 2-core CPU responsive; a full queue answers "busy" at once.
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


if __name__ == "__main__":
    build_app().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
