"""The Cartoonize tab: a photo through the white-box cartoonizer, in the style picked."""

from __future__ import annotations

import gradio as gr

from cartoon.images import DEFAULT_MAX_SIDE
from cartoon.runtime import on_inference_threads
from cartoon.stylize import MODES
from cartoon.tabs.shared import EXAMPLES, MODEL_QUEUE, load_photo, notes_markdown, photo_input, png_download, result_column, weights_missing


def style_choices() -> list[tuple[str, str]]:
    """(label, style) of every style whose weights are installed, the default first."""
    from cartoon.whitebox import STYLES, offered_styles

    return [(f"{style}: {STYLES[style].description}", style) for style in offered_styles()]


@on_inference_threads
def run_cartoonize(path, mode, strength, max_side, style=None, progress=gr.Progress()):
    from cartoon.whitebox import STYLES, cartoonize_photo, default_style

    style = style or default_style()  # the dropdown refuses unknown styles itself; an API call may send None
    progress(0.1, desc="Reading the photo")
    loaded = load_photo(path, max_side)
    progress(0.3, desc="Finding faces and cartoonizing")
    try:
        result = cartoonize_photo(loaded.image, mode=mode, strength=float(strength), style=style)
    except FileNotFoundError:
        raise weights_missing(STYLES[style].model) from None
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
                styles = style_choices()
                style = gr.Dropdown(styles, value=styles[0][1], label="Style",
                                    info="Each style is its own generator, trained on its own cartoons.")
                mode = gr.Radio([(label, key) for key, label in MODES.items()], value="faces", label="Mode")
                strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength (0 = photo, 1 = full cartoon)")
                max_side = gr.Slider(256, 2048, value=DEFAULT_MAX_SIDE, step=64, label="Longest side (pixels)")
                button = gr.Button("Cartoonize", variant="primary")
            compare, download, notes = result_column()
        gr.Examples([[str(EXAMPLES / "astronaut.jpg")], [str(EXAMPLES / "astronaut_pair.jpg")]], inputs=[photo])
        # the style comes last, so that API callers that send only the first four inputs still work
        button.click(run_cartoonize, [photo, mode, strength, max_side, style], [compare, download, notes], api_name="cartoonize", **MODEL_QUEUE)
