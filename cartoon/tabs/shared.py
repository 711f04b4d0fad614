"""What the tabs share: the inference queue group, reading uploads, download files and error messages."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr

from cartoon.images import ImageError, open_image
from cartoon.runtime import INFERENCE_THREADS

# Gradio's concurrency limit is per endpoint unless events share a concurrency group. The model
# handlers all run on cartoon.runtime's INFERENCE_THREADS threads, so they share one group of that
# size: a visitor's page then shows a true queue position instead of "processing" while the
# request actually waits for a free inference thread behind other endpoints' work.
MODEL_QUEUE = {"concurrency_id": "inference", "concurrency_limit": INFERENCE_THREADS}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOWNLOADS = Path(tempfile.mkdtemp(prefix="cartoon-downloads-"))
DOWNLOAD_LIFETIME_SECONDS = 3600


def photo_input(label: str = "Photo") -> gr.Image:
    """An image input whose handler receives the raw upload path.

    gr.Image decodes uploads with Pillow before our code runs, so a corrupt or empty file would end
    in a generic error; passing the path through lets `cartoon.images.open_image` say what is wrong.
    (The instance's method is replaced rather than subclassing: gradio writes a .pyi stub next to
    the module of every component subclass.)
    """
    image = gr.Image(label=label, type="filepath", sources=["upload", "webcam", "clipboard"], height=360)
    decode = image.preprocess

    def raw_path(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return payload.path
        return decode(payload)

    image.preprocess = raw_path
    return image


def result_column() -> tuple[gr.ImageSlider, gr.DownloadButton, gr.Markdown]:
    """The photo tabs' output column: the before/after slider, the result's PNG download (shown
    once there is a result) and the notes."""
    with gr.Column():
        # the result is what a user came for: most of the frame shows it, the photo a strip at the left
        compare = gr.ImageSlider(label="Before / after", type="pil", height=420, slider_position=20)
        download = gr.DownloadButton("Download PNG", visible=False)
        notes = gr.Markdown()
    return compare, download, notes

def download_folder() -> Path:
    """A fresh folder for one result's downloads; folders older than an hour are removed."""
    cutoff = time.time() - DOWNLOAD_LIFETIME_SECONDS
    for old in DOWNLOADS.iterdir():
        if old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    folder = DOWNLOADS / uuid.uuid4().hex
    folder.mkdir()
    return folder


def png_download(image, stem: str) -> str:
    """Write `image` as a PNG for a download button."""
    path = download_folder() / f"{stem}.png"
    image.save(path)
    return str(path)


def load_photo(path, max_side: int):
    """The upload as RGB, or a gr.Error with a message a person can act on."""
    try:
        return open_image(path, max_side=int(max_side))
    except ImageError as error:
        raise gr.Error(str(error), title="Cannot use this image") from None


def weights_missing(name: str) -> gr.Error:
    """What a handler raises when the registered model `name` has no weights installed."""
    from cartoon.acgan import MODEL_VERSIONS
    from cartoon.whitebox import STYLES

    owners = {"twingan": "The TwinGAN", "stylegan": "The style-based generator's"}
    owners |= {model: "The avatar generator's" for model in MODEL_VERSIONS.values()}
    owners |= {spec.model: f"The {style} style's" for style, spec in STYLES.items()}
    owner = owners[name]
    return gr.Error(f"{owner} weights are not installed (weights/{name}).", title="Model missing")


def notes_markdown(notes: list[str]) -> str:
    return "\n".join(f"- {note}" for note in notes)
