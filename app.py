"""Gradio shell: the tabs and their wiring. Model code lives in the `cartoon` package."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr

from cartoon.images import DEFAULT_MAX_SIDE, MAX_FILE_BYTES, ImageError, open_image
from cartoon.stylize import MODES

TITLE = "Cartoon people"
INTRO = "Turn a photo into a cartoon or an anime character, or draw anime avatars. Everything runs on your CPU."
EXAMPLES = Path(__file__).resolve().parent / "examples"
DOWNLOADS = Path(tempfile.mkdtemp(prefix="cartoon-downloads-"))
DOWNLOAD_LIFETIME_SECONDS = 3600


class PhotoInput(gr.Image):
    """An image input that hands the raw upload to `cartoon.images.open_image`.

    gr.Image decodes uploads with Pillow before our code runs, so a corrupt or empty file would
    end in a generic error; passing the path through lets the loader explain what is wrong.
    """

    is_template = True  # rendered by the frontend as a plain gr.Image

    def preprocess(self, payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return payload.path
        return super().preprocess(payload)


def photo_input(label: str = "Photo") -> PhotoInput:
    return PhotoInput(label=label, type="filepath", sources=["upload", "webcam", "clipboard"], height=360)


def png_download(image, stem: str) -> str:
    """Write `image` as a PNG for a download button; files older than an hour are removed."""
    cutoff = time.time() - DOWNLOAD_LIFETIME_SECONDS
    for old in DOWNLOADS.glob("*/*.png"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
            old.parent.rmdir()
    folder = DOWNLOADS / uuid.uuid4().hex
    folder.mkdir()
    path = folder / f"{stem}.png"
    image.save(path)
    return str(path)


def load_photo(path, max_side: int):
    """The upload as RGB, or a gr.Error with a message a person can act on."""
    try:
        return open_image(path, max_side=int(max_side))
    except ImageError as error:
        raise gr.Error(str(error), title="Cannot use this image") from None


def notes_markdown(notes: list[str]) -> str:
    return "\n".join(f"- {note}" for note in notes)


# --- Cartoonize -------------------------------------------------------------------------------


def run_cartoonize(path, mode, strength, max_side, progress=gr.Progress()):
    from cartoon.whitebox import cartoonize_photo

    progress(0.1, desc="Reading the photo")
    loaded = load_photo(path, max_side)
    progress(0.3, desc="Finding faces and cartoonizing")
    result = cartoonize_photo(loaded.image, mode=mode, strength=float(strength))
    notes = loaded.notes + result.notes
    if mode != "whole" and result.faces:
        notes.append(f"{result.faces} face{'s' if result.faces > 1 else ''} cartoonized.")
    return (result.source, result.image), gr.DownloadButton(value=png_download(result.image, "cartoon"), visible=True), notes_markdown(notes)


def cartoonize_tab():
    with gr.Tab("Cartoonize"):
        gr.Markdown("Flat colours and clean edges, with the face kept recognisable (white-box cartoonizer).")
        with gr.Row():
            with gr.Column():
                photo = photo_input()
                mode = gr.Radio([(label, key) for key, label in MODES.items()], value="faces", label="Mode")
                strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength (0 = photo, 1 = full cartoon)")
                max_side = gr.Slider(256, 2048, value=DEFAULT_MAX_SIDE, step=64, label="Longest side (pixels)")
                button = gr.Button("Cartoonize", variant="primary")
            with gr.Column():
                compare = gr.ImageSlider(label="Before / after", type="pil", height=420)
                download = gr.DownloadButton("Download PNG", visible=False)
                notes = gr.Markdown()
        gr.Examples([[str(EXAMPLES / "astronaut.jpg")], [str(EXAMPLES / "astronaut_pair.jpg")]], inputs=[photo])
        button.click(run_cartoonize, [photo, mode, strength, max_side], [compare, download, notes], api_name="cartoonize")


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs():
            cartoonize_tab()
    # Two requests at a time keep a 2-core CPU responsive; a full queue answers "busy" at once.
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


if __name__ == "__main__":
    build_app().launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_FILE_BYTES,
        show_error=True,
        allowed_paths=[str(EXAMPLES)],
    )
