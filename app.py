"""Gradio shell: the tabs and their wiring. Model code lives in the `cartoon` package."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr

from cartoon.images import DEFAULT_MAX_SIDE, MAX_FILE_BYTES, ImageError, open_image
from cartoon.runtime import INFERENCE_THREADS, on_inference_threads
from cartoon.stylize import MODES

TITLE = "Cartoon people"
# Gradio's concurrency limit is per endpoint unless events share a concurrency group. The model
# handlers all run on cartoon.runtime's INFERENCE_THREADS threads, so they share one group of that
# size: a visitor's page then shows a true queue position instead of "processing" while the
# request actually waits for a free inference thread behind other endpoints' work.
MODEL_QUEUE = {"concurrency_id": "inference", "concurrency_limit": INFERENCE_THREADS}
INTRO = "Turn a photo into a cartoon or an anime character, or draw anime avatars. Everything runs on your CPU."
EXAMPLES = Path(__file__).resolve().parent / "examples"
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
    from cartoon.whitebox import STYLES

    owners = {"twingan": "The TwinGAN", "acgan": "The avatar generator's", "stylegan": "The style-based generator's"}
    owners |= {spec.model: f"The {style} style's" for style, spec in STYLES.items()}
    owner = owners[name]
    return gr.Error(f"{owner} weights are not installed (weights/{name}).", title="Model missing")


def notes_markdown(notes: list[str]) -> str:
    return "\n".join(f"- {note}" for note in notes)


# --- Cartoonize -------------------------------------------------------------------------------


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
            with gr.Column():
                compare = gr.ImageSlider(label="Before / after", type="pil", height=420)
                download = gr.DownloadButton("Download PNG", visible=False)
                notes = gr.Markdown()
        gr.Examples([[str(EXAMPLES / "astronaut.jpg")], [str(EXAMPLES / "astronaut_pair.jpg")]], inputs=[photo])
        # the style comes last, so that API callers that send only the first four inputs still work
        button.click(run_cartoonize, [photo, mode, strength, max_side, style], [compare, download, notes], api_name="cartoonize", **MODEL_QUEUE)


# --- Photo → Anime ----------------------------------------------------------------------------

ANIME_DIRECTIONS = [("Human → anime", "to_anime"), ("Anime → human", "to_human")]


@on_inference_threads
def run_anime(path, direction, mode, strength, max_side, progress=gr.Progress()):
    from cartoon.twingan import anime_photo

    progress(0.1, desc="Reading the image")
    loaded = load_photo(path, max_side)
    progress(0.3, desc="Finding faces and translating")
    try:
        result = anime_photo(loaded.image, reverse=direction == "to_human", mode=mode, strength=float(strength))
    except FileNotFoundError:
        raise weights_missing("twingan") from None
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
                max_side = gr.Slider(256, 2048, value=DEFAULT_MAX_SIDE, step=64, label="Longest side (pixels)")
                button = gr.Button("Translate", variant="primary")
            with gr.Column():
                compare = gr.ImageSlider(label="Before / after", type="pil", height=420)
                download = gr.DownloadButton("Download PNG", visible=False)
                notes = gr.Markdown()
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
        button.click(run_anime, [photo, direction, mode, strength, max_side], [compare, download, notes], api_name="anime", **MODEL_QUEUE)
        search.click(run_lookalikes, [photo, k, gallery_files, gallery_folder], [found, search_notes], api_name="lookalikes", **MODEL_QUEUE)


# --- Avatar and Interpolate ---------------------------------------------------------------------


def avatar_tab() -> gr.Textbox:
    """The Avatar tab; returns the textbox holding the recipe of the face last picked in its grid."""
    from cartoon.acgan import EYE_COLOURS, HAIR_COLOURS, MAX_FACES, MAX_SEED, RANDOM, Recipe, avatars
    from cartoon.media import grid, upscale

    @on_inference_threads
    def draw(hair, eyes, seed, count, trunc, scale):
        try:
            recipe = Recipe(hair, eyes, int(seed), int(count), round(float(trunc), 3))
            faces, own = avatars(recipe)
            sheet = upscale(grid(faces), int(scale))
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot draw these avatars") from None
        except FileNotFoundError:
            raise weights_missing("acgan") from None
        gallery = [(upscale(face, int(scale)), str(r)) for face, r in zip(faces, own)]
        message = f"{recipe.n} face{'s' if recipe.n > 1 else ''}. Click a face to get its own recipe (and use it in Interpolate)."
        return sheet, gallery, [str(r) for r in own], str(recipe), gr.DownloadButton(value=png_download(sheet, "avatars"), visible=True), message

    @on_inference_threads
    def from_recipe(text, scale):
        try:
            recipe = Recipe.parse(text)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot read this recipe") from None
        return (recipe.hair, recipe.eyes, recipe.seed, recipe.n, recipe.trunc) + draw(recipe.hair, recipe.eyes, recipe.seed, recipe.n, recipe.trunc, scale)

    def pick(recipes, evt: gr.SelectData):
        return recipes[evt.index]

    with gr.Tab("Avatar"):
        gr.Markdown("64×64 anime faces with the hair and eye colours you ask for (ACGAN). The recipe reproduces them exactly.")
        with gr.Row():
            with gr.Column(scale=1):
                hair = gr.Dropdown([RANDOM, *HAIR_COLOURS], value="blue", label="Hair colour")
                eyes = gr.Dropdown([RANDOM, *EYE_COLOURS], value="red", label="Eye colour")
                with gr.Row():
                    seed = gr.Number(7, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, scale=3)
                    dice = gr.Button("🎲", scale=1, min_width=48)
                count = gr.Slider(1, MAX_FACES, value=16, step=1, label="Faces")
                trunc = gr.Slider(0, 2, value=0.8, step=0.05, label="Noise scale (truncation): lower is more typical, higher more varied")
                scale = gr.Slider(1, 8, value=4, step=1, label="Display size (× nearest-neighbour, stays sharp)")
                button = gr.Button("Draw", variant="primary")
                recipe = gr.Textbox(label="Recipe (paste one and press Enter to redraw it)", max_lines=1)
            with gr.Column(scale=2):
                sheet = gr.Image(label="Avatars", type="pil", format="png", height=520)
                download = gr.DownloadButton("Download grid PNG", visible=False)
                message = gr.Markdown()
                gallery = gr.Gallery(label="Single faces (click one; each downloads on its own)", format="png", columns=8, height=320)
                picked = gr.Textbox(label="Picked face recipe", max_lines=1)
        face_recipes = gr.State([])
        controls = [hair, eyes, seed, count, trunc, scale]
        outputs = [sheet, gallery, face_recipes, recipe, download, message]
        button.click(draw, controls, outputs, api_name="avatars", **MODEL_QUEUE)
        dice.click(lambda: int.from_bytes(os.urandom(4), "big") >> 1, None, seed, api_name=False).then(draw, controls, outputs, **MODEL_QUEUE)
        recipe.submit(from_recipe, [recipe, scale], [hair, eyes, seed, count, trunc, *outputs], api_name="avatars_recipe", **MODEL_QUEUE)
        gallery.select(pick, face_recipes, picked, api_name=False)
    return picked


def interpolate_tab(picked: gr.Textbox):
    """The Interpolate tab; `picked` is the Avatar tab's picked-face recipe, offered as an endpoint."""
    from cartoon.acgan import morph, walk
    from cartoon.latent import MAX_FRAMES
    from cartoon.media import save_gif, save_video, strip, upscale, video_encoder

    def export(frames, scale, fps, stem):
        folder = download_folder()
        gif = save_gif(frames, folder / f"{stem}.gif", int(fps), int(scale))
        mp4 = save_video(frames, folder / f"{stem}.mp4", int(fps), max(int(scale), 2)) if video_encoder() else None
        shown = upscale(strip(frames), int(scale))
        return frames, shown, str(gif), gr.DownloadButton(value=str(gif), visible=True), str(mp4) if mp4 else None, gr.Slider(1, len(frames), value=1, step=1, label="Frame"), upscale(frames[0], int(scale))

    @on_inference_threads
    def run_morph(start, end, frames, mode, scale, fps):
        try:
            result = morph(start, end, int(frames), mode)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot morph") from None
        except FileNotFoundError:
            raise weights_missing("acgan") from None
        return export(result, scale, fps, "morph") + (f"{len(result)} frames, {mode}: colours move linearly. MP4 via imageio-ffmpeg's bundled ffmpeg." if video_encoder() else f"{len(result)} frames (no MP4 encoder installed).",)

    @on_inference_threads
    def run_walk(seed, stops, frames, mode, scale, fps):
        try:
            result, endpoints = walk(int(seed), int(stops), int(frames), mode)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot walk") from None
        except FileNotFoundError:
            raise weights_missing("acgan") from None
        visited = "\n".join(f"- `{r}`" for r in endpoints)
        return export(result, scale, fps, "walk") + (f"A loop through {len(endpoints)} faces:\n{visited}",)

    def show_frame(frames, index, scale):
        if not frames:
            return None
        return upscale(frames[min(max(int(index), 1), len(frames)) - 1], int(scale))

    with gr.Tab("Interpolate"):
        gr.Markdown("Morph one avatar into another. Endpoints are recipes from the Avatar tab (the first face of each is used).")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Row():
                    start = gr.Textbox("acgan:v2;hair=blue;eyes=red;seed=7;n=1;trunc=0.8", label="Start recipe", scale=4)
                    start_pick = gr.Button("← picked face", scale=1, min_width=80)
                with gr.Row():
                    end = gr.Textbox("acgan:v2;hair=blonde;eyes=green;seed=42;n=1;trunc=0.8", label="End recipe", scale=4)
                    end_pick = gr.Button("← picked face", scale=1, min_width=80)
                frames = gr.Slider(2, MAX_FRAMES, value=30, step=1, label="Frames")
                mode = gr.Radio(["slerp", "lerp"], value="slerp", label="Noise interpolation")
                fps = gr.Slider(1, 30, value=15, step=1, label="Frames per second")
                scale = gr.Slider(1, 8, value=4, step=1, label="Display size (× nearest-neighbour)")
                button = gr.Button("Morph", variant="primary")
                with gr.Accordion("Walk: a loop through random faces", open=False):
                    walk_seed = gr.Number(0, label="Walk seed", precision=0, minimum=0)
                    stops = gr.Slider(2, 8, value=4, step=1, label="Faces visited")
                    walk_button = gr.Button("Walk")
            with gr.Column(scale=2):
                animation = gr.Image(label="Animation (GIF)", type="filepath", height=300)
                with gr.Row():
                    gif_download = gr.DownloadButton("Download GIF", visible=False)
                video = gr.Video(label="MP4", loop=True, autoplay=True, height=300)
                frame_slider = gr.Slider(1, 2, value=1, step=1, label="Frame")
                frame = gr.Image(label="Frame", type="pil", format="png", height=260)
                strip_image = gr.Image(label="Strip", type="pil", format="png")
                message = gr.Markdown()
        state = gr.State([])
        outputs = [state, strip_image, animation, gif_download, video, frame_slider, frame, message]
        start_pick.click(lambda r: r or gr.skip(), picked, start, api_name=False)
        end_pick.click(lambda r: r or gr.skip(), picked, end, api_name=False)
        button.click(run_morph, [start, end, frames, mode, scale, fps], outputs, api_name="morph", **MODEL_QUEUE)
        walk_button.click(run_walk, [walk_seed, stops, frames, mode, scale, fps], outputs, api_name="walk", **MODEL_QUEUE)
        frame_slider.change(show_frame, [state, frame_slider, scale], frame, api_name=False)


# --- Latent Lab ---------------------------------------------------------------------------------

LAB_NONE = "none"
# recipe endings of the examples (seed 7, ψ 0.7), and what each shows
LAB_EXAMPLES = {
    "": "A face",
    ";dir=sefa0:3": "Along SeFa's strongest direction",
    ";mix=42;cross=4": "Layout of this face, colours of seed 42",
    ";dir=hair-blue:2": "Moved toward blue hair (first use tags 2,000 faces)",
}


def lab_tab():
    """The Latent Lab tab, only when the style-based generator's weights are installed: until its
    training run ships them (weights/stylegan) a tab could do nothing, so the app starts without it."""
    from cartoon.hub import weights_installed

    if weights_installed("stylegan"):
        with gr.Tab("Latent Lab"):
            lab_controls()


def lab_controls():
    from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
    from cartoon.latent import MAX_FRAMES
    from cartoon.media import save_gif, save_video, upscale, video_encoder
    from cartoon.stylegan import lab
    from cartoon.stylegan.directions import SEFA_COUNT
    from cartoon.stylegan.edits import Edit, format_cells, parse_cells, parse_channels

    generator = lab.load_generator(lab.LATEST)

    def read_recipe(text) -> lab.Recipe:
        try:
            return lab.Recipe.parse(text)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot read this recipe") from None

    def recipe_of(seed, psi, hair, hair_amount, eyes, eyes_amount, mixing, mix, cross, edit_json, sefa) -> lab.Recipe:
        chosen = {f"hair-{hair}": hair_amount} if hair != LAB_NONE else {}
        chosen |= {f"eyes-{eyes}": eyes_amount} if eyes != LAB_NONE else {}
        chosen |= {f"sefa{k}": float(amount) for k, amount in enumerate(sefa) if amount}
        edit = Edit.from_json(edit_json) if (edit_json or "").strip() else None
        return lab.Recipe(int(seed), round(float(psi), 3), {k: float(v) for k, v in chosen.items()},
                          int(mix) if mixing else None, int(cross) if mixing else None, edit)

    def shown_face(recipe, scale, progress):
        try:
            face = lab.render(recipe, generator, progress=lambda share, text: progress(share, desc=text))
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot draw this face") from None
        except FileNotFoundError as error:  # the colour classifier the colour directions are found with
            raise gr.Error(str(error), title="Model missing") from None
        face = upscale(face, int(scale))
        return face, str(recipe), gr.DownloadButton(value=png_download(face, "lab"), visible=True)

    @on_inference_threads
    def draw(seed, psi, hair, hair_amount, eyes, eyes_amount, mixing, mix, cross, edit_json, scale, *sefa, progress=gr.Progress()):
        try:
            recipe = recipe_of(seed, psi, hair, hair_amount, eyes, eyes_amount, mixing, mix, cross, edit_json, sefa)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot draw this face") from None
        return shown_face(recipe, scale, progress)

    @on_inference_threads
    def from_recipe(text, scale, progress=gr.Progress()):
        recipe = read_recipe(text)
        return (recipe.seed, recipe.psi, recipe.edit.to_json() if recipe.edit else "") + shown_face(recipe, scale, progress)

    @on_inference_threads
    def features(text, block, channel, cells):
        try:
            return lab.feature_overlay(read_recipe(text), int(block), int(channel), generator, marked=parse_cells(cells))
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot show this layer") from None

    @on_inference_threads
    def clicked(text, block, channel, cells, action, evt: gr.SelectData):
        side = lab.input_side(generator, int(block))
        cell = lab.cell_at(*evt.index, side)
        if action == "paint":
            painted = parse_cells(cells)
            cells = format_cells(sorted(set(painted) ^ {cell}))
            return features(text, block, channel, cells), cells, gr.skip()
        ranked = lab.rank_channels(read_recipe(text), int(block), cell, generator, top=12)
        table = "\n".join(f"| {c} | {v:+.3f} |" for c, v in ranked)
        return gr.skip(), gr.skip(), f"Most active channels at cell {cell[0]},{cell[1]}:\n\n| channel | value |\n|---|---|\n{table}"

    def make_edit(block, channels, cells, amount):
        try:
            picked, weights = parse_channels(channels)
            edit = Edit.painted(int(block), picked, parse_cells(cells), lab.input_side(generator, int(block)), weights, float(amount))
            return edit.check(generator).to_json()
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot make this edit") from None

    def load_edit(path):
        try:
            edit = Edit.load(path, generator)
        except (ValueError, OSError) as error:
            raise gr.Error(str(error), title="Cannot use this edit") from None
        weights = ", ".join(f"{c}:{w:g}" for c, w in zip(edit.channels, edit.weights))
        return edit.to_json(), edit.block, weights, format_cells(edit.cells), edit.amount

    def save_edit(edit_json):
        try:
            edit = Edit.from_json(edit_json)
        except ValueError as error:
            raise gr.Error(str(error), title="No edit to save") from None
        return gr.DownloadButton(value=str(edit.save(download_folder() / "edit.json")), visible=True)

    def export(frames, scale, fps, stem, message):
        folder = download_folder()
        gif = save_gif(frames, folder / f"{stem}.gif", int(fps), int(scale))
        mp4 = save_video(frames, folder / f"{stem}.mp4", int(fps), max(int(scale), 2)) if video_encoder() else None
        return str(gif), str(mp4) if mp4 else None, message

    @on_inference_threads
    def run_animate(text, frames, fps, scale):
        try:
            shown = lab.animate(read_recipe(text), frames=int(frames), generator=generator)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot animate") from None
        return export(shown, scale, fps, "edit", f"{len(shown)} frames: the edit's amount 0 → full → 0, looping.")

    @on_inference_threads
    def run_morph(text, end, frames, mode, fps, scale):
        try:
            shown = lab.interpolate(read_recipe(text), read_recipe(end), int(frames), mode, generator)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot interpolate") from None
        return export(shown, scale, fps, "morph", f"{len(shown)} frames in w ({mode}), from this face to `{end}`.")

    blocks = lab.block_choices(generator)
    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown("Style-based anime faces: move them along directions in w, mix two faces' styles, "
                        "look inside a layer and edit its feature maps. The recipe reproduces the face exactly.")
            with gr.Row():
                seed = gr.Number(7, label="Seed", precision=0, minimum=0, maximum=lab.MAX_SEED, scale=3)
                dice = gr.Button("🎲", scale=1, min_width=48)
            psi = gr.Slider(*lab.PSI_RANGE, value=0.7, step=0.05, label="Truncation ψ (0 = the mean face, 1 = untouched)")
            with gr.Row():
                hair = gr.Dropdown([LAB_NONE, *HAIR_COLOURS], value=LAB_NONE, label="Hair direction")
                hair_amount = gr.Slider(-5, 5, value=2, step=0.25, label="Amount")
            with gr.Row():
                eyes = gr.Dropdown([LAB_NONE, *EYE_COLOURS], value=LAB_NONE, label="Eye direction")
                eyes_amount = gr.Slider(-5, 5, value=2, step=0.25, label="Amount")
            with gr.Accordion("Unsupervised directions (SeFa), in standard deviations of w", open=False):
                sefa = [gr.Slider(-5, 5, value=0, step=0.25, label=f"sefa{k}") for k in range(SEFA_COUNT)]
            with gr.Accordion("Style mixing: coarse styles from this face, the rest from another", open=False):
                mixing = gr.Checkbox(False, label="Mix")
                mix = gr.Number(42, label="Second face's seed", precision=0, minimum=0, maximum=lab.MAX_SEED)
                cross = gr.Slider(0, generator.num_ws, value=generator.num_ws // 2, step=1, label="First style from the second face (low: layout, high: colour)")
            scale = gr.Slider(1, 8, value=4, step=1, label="Display size (× nearest-neighbour)")
            button = gr.Button("Draw", variant="primary")
            recipe = gr.Textbox(label="Recipe (paste one and press Enter to redraw it)", max_lines=1)
            examples = gr.Examples([[f"stylegan:v1;seed=7;psi=0.7{extra}"] for extra in LAB_EXAMPLES], inputs=[recipe],
                                   example_labels=list(LAB_EXAMPLES.values()))
        with gr.Column(scale=1):
            face = gr.Image(label="Face", type="pil", format="png", height=300)
            download = gr.DownloadButton("Download PNG", visible=False)
            with gr.Accordion("Feature maps: green cells positive, red negative", open=True):
                with gr.Row():
                    block = gr.Dropdown(blocks, value=blocks[-2][1], label="Layer (a block's input)")
                    channel = gr.Slider(0, max(generator.block_channels) - 1, value=0, step=1, label="Channel")
                action = gr.Radio([("rank channels", "rank"), ("paint edit cells", "paint")], value="rank", label="Click on the map to")
                view = gr.Image(label="Feature map (click a cell)", type="pil", format="png", height=300, interactive=False, elem_id="lab-feature-map")
                ranking = gr.Markdown()
        with gr.Column(scale=1):
            with gr.Accordion("Feature-map edit", open=True):
                channels = gr.Textbox("0", label="Channels to change (channel or channel:weight, comma-separated)")
                cells = gr.Textbox("", label="Cells (row,col; …) — paint them on the map")
                amount = gr.Slider(-20, 20, value=5, step=0.5, label="Amount")
                apply = gr.Button("Apply edit")
                edit_json = gr.Textbox(label="Edit in use (JSON; empty = none)", lines=2)
                with gr.Row():
                    save = gr.Button("Save edit JSON")
                    edit_download = gr.DownloadButton("Download edit.json", visible=False)
                upload = gr.File(label="Load an edit JSON", file_types=[".json"], type="filepath")
            with gr.Accordion("Animation", open=True):
                frames = gr.Slider(2, MAX_FRAMES, value=24, step=1, label="Frames")
                fps = gr.Slider(1, 30, value=12, step=1, label="Frames per second")
                animate = gr.Button("Animate the edit (0 → amount → 0)")
                end = gr.Textbox("stylegan:v1;seed=42;psi=0.7", label="Interpolate to recipe", max_lines=1)
                mode = gr.Radio(["lerp", "slerp"], value="lerp", label="Interpolation in w")
                morph = gr.Button("Interpolate")
                animation = gr.Image(label="Animation (GIF)", type="filepath", height=260)
                video = gr.Video(label="MP4", loop=True, autoplay=True, height=260)
                message = gr.Markdown()

    controls = [seed, psi, hair, hair_amount, eyes, eyes_amount, mixing, mix, cross, edit_json, scale, *sefa]
    drawn = [face, recipe, download]
    button.click(draw, controls, drawn, api_name="lab", **MODEL_QUEUE)
    dice.click(lambda: int.from_bytes(os.urandom(4), "big") >> 1, None, seed, api_name=False).then(draw, controls, drawn, **MODEL_QUEUE)
    recipe.submit(from_recipe, [recipe, scale], [seed, psi, edit_json, *drawn], api_name="lab_recipe", **MODEL_QUEUE)
    examples.load_input_event.then(from_recipe, [recipe, scale], [seed, psi, edit_json, *drawn], api_name=False, **MODEL_QUEUE)
    map_inputs = [recipe, block, channel, cells]
    for changed in (recipe.change, block.change, channel.change):
        changed(features, map_inputs, view, api_name=False, **MODEL_QUEUE)
    view.select(clicked, [*map_inputs, action], [view, cells, ranking], api_name=False, **MODEL_QUEUE)
    apply.click(make_edit, [block, channels, cells, amount], edit_json, api_name="lab_edit").then(draw, controls, drawn, **MODEL_QUEUE)
    save.click(save_edit, edit_json, edit_download, api_name=False)
    upload.upload(load_edit, upload, [edit_json, block, channels, cells, amount], api_name=False).then(draw, controls, drawn, **MODEL_QUEUE)
    animate.click(run_animate, [recipe, frames, fps, scale], [animation, video, message], api_name="lab_animate", **MODEL_QUEUE)
    morph.click(run_morph, [recipe, end, frames, mode, fps, scale], [animation, video, message], api_name="lab_morph", **MODEL_QUEUE)


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs():
            cartoonize_tab()
            anime_tab()
            picked = avatar_tab()
            interpolate_tab(picked)
            lab_tab()
    # A full queue answers "busy" at once; model events share one limit through MODEL_QUEUE.
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
