"""The Photo → Anime tab: TwinGAN's translation either way, and the look-alike search in its embedding."""

from __future__ import annotations

import gradio as gr

from cartoon.images import DEFAULT_MAX_SIDE, ImageError
from cartoon.runtime import on_inference_threads
from cartoon.stylize import MODES
from cartoon.tabs.shared import EXAMPLES, MODEL_QUEUE, load_photo, notes_markdown, photo_input, png_download, result_column, weights_missing

ANIME_DIRECTIONS = [("Human → anime", "to_anime"), ("Anime → human", "to_human")]


@on_inference_threads
def run_anime(path, direction, mode, strength, max_side, hair=None, eyes=None, progress=gr.Progress()):
    from cartoon.twingan import KEEP, anime_photo

    progress(0.1, desc="Reading the image")
    loaded = load_photo(path, max_side)
    progress(0.3, desc="Finding faces and translating")
    reverse = direction == "to_human"
    try:
        # colour is the anime side's: the way back keeps it, whatever the dropdowns say
        result = anime_photo(loaded.image, reverse=reverse, mode=mode, strength=float(strength),
                             hair=KEEP if reverse else hair or KEEP, eyes=KEEP if reverse else eyes or KEEP)
    except FileNotFoundError:
        raise weights_missing("twingan") from None
    except ValueError as error:
        raise gr.Error(str(error), title="Cannot ask for this colour") from None
    notes = loaded.notes + result.notes
    if mode != "whole" and result.faces:
        notes.append(f"{result.faces} face{'s' if result.faces > 1 else ''} translated.")
    return (result.source, result.image), gr.DownloadButton(value=png_download(result.image, "anime"), visible=True), notes_markdown(notes)


@on_inference_threads
def run_lookalikes(path, k, gallery_files, gallery_folder, progress=gr.Progress()):
    from cartoon.twingan import lookalikes
    from cartoon.twingan.gallery import gallery_from_upload, thumbnails

    progress(0.1, desc="Reading the image")
    loaded = load_photo(path, DEFAULT_MAX_SIDE)
    progress(0.3, desc="Embedding the gallery and searching")
    try:
        folder = gallery_from_upload(gallery_files, gallery_folder) if gallery_files or gallery_folder else None
        matches = lookalikes(loaded.image, k=int(k), gallery=folder)
    except ImageError as error:
        raise gr.Error(str(error), title="Cannot search this gallery") from None
    except FileNotFoundError:
        raise weights_missing("twingan") from None
    counts = ", ".join(f"{len(found)} {group}" for group, found in matches.items())
    return thumbnails(matches), notes_markdown(loaded.notes + [f"Nearest in the shared embedding (cosine distance): {counts}."])


def colour_choices() -> tuple[list[str], list[str], bool]:
    """The hair and eye colours to offer, "keep" first, and whether the installed weights take them at all."""
    from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
    from cartoon.twingan import KEEP, colours_offered

    return [KEEP, *HAIR_COLOURS], [KEEP, *EYE_COLOURS], colours_offered()


def anime_tab():
    with gr.Tab("Photo → Anime"):
        gr.Markdown("The same person as an anime character, or back (TwinGAN), and the look-alikes nearest to them.")
        with gr.Row():
            with gr.Column():
                photo = photo_input("Portrait")
                direction = gr.Radio(ANIME_DIRECTIONS, value="to_anime", label="Direction")
                mode = gr.Radio([(label, key) for key, label in MODES.items()], value="crop", label="Mode")
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength",
                                     info="0 = the face rebuilt in its own domain, 1 = fully translated; in between blends the domain switch")
                # offered only when the installed weights were trained to take colour requests
                hair_colours, eye_colours, offered = colour_choices()
                with gr.Row(visible=offered):
                    hair = gr.Dropdown(hair_colours, value=hair_colours[0], label="Hair colour", info="keep: the photo's own")
                    eyes = gr.Dropdown(eye_colours, value=eye_colours[0], label="Eye colour")
                max_side = gr.Slider(256, 2048, value=DEFAULT_MAX_SIDE, step=64, label="Longest side (pixels)")
                button = gr.Button("Translate", variant="primary")
            compare, download, notes = result_column()
        gr.Examples([[str(EXAMPLES / "astronaut.jpg"), "to_anime"], [str(EXAMPLES / "astronaut_anime.png"), "to_human"]],
                    inputs=[photo, direction], example_labels=["A photo, to anime", "Our anime translation of it, back to human"])
        with gr.Accordion("Look-alikes", open=False):
            with gr.Row():
                k = gr.Slider(1, 24, value=8, step=1, label="Look-alikes per group")
                gallery_files = gr.File(label="Your gallery: images or a zip (anime/ and human/ folders are searched apart); empty: the built-in one",
                                        file_count="multiple", file_types=["image", ".zip"])
                gallery_folder = gr.File(label="…or a folder of images (searched as one group)", file_count="directory")
            search = gr.Button("Find look-alikes")
            found = gr.Gallery(label="Nearest faces", columns=8, height=360)
            search_notes = gr.Markdown()
        # the colours come last, so that API callers that send only the first five inputs still work
        button.click(run_anime, [photo, direction, mode, strength, max_side, hair, eyes], [compare, download, notes], api_name="anime", **MODEL_QUEUE)
        search.click(run_lookalikes, [photo, k, gallery_files, gallery_folder], [found, search_notes], api_name="lookalikes", **MODEL_QUEUE)
