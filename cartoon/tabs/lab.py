"""The Latent Lab tab: the style-based generator's directions, style mixing, feature maps and their edits."""

from __future__ import annotations

import os

import gradio as gr

from cartoon.runtime import on_inference_threads
from cartoon.tabs.shared import MODEL_QUEUE, download_folder, png_download

LAB_NONE = "none"
# recipe endings of the examples (seed 7, ψ 0.7), and what each shows
LAB_EXAMPLES = {
    "": "A face",
    ";dir=sefa0:3": "Along SeFa's strongest direction",
    ";mix=42;cross=4": "Layout of this face, colours of seed 42",
    ";dir=hair-blue:2": "Moved toward blue hair (first use tags 2,000 faces)",
}
# the face the shipped mouth edit is shown on: on the step-11,000 weights it opens seed 4's mouth
# clearly, while some faces (pale ones with a faint mouth) open only a little
LAB_MOUTH_SEED = 4


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
    from cartoon.stylegan.mouth import shipped_mouth
    from cartoon.stylegan.sefa_names import label, sefa_names

    generator = lab.load_generator(lab.LATEST)
    names = sefa_names(generator)  # the SeFa sliders' names shipped for these very weights, if any
    examples_shown = {f"stylegan:v{lab.LATEST};seed=7;psi=0.7{extra}": text for extra, text in LAB_EXAMPLES.items()}
    mouth = shipped_mouth(generator)  # found for these weights on shipping day (cartoon.stylegan.mouth)
    if mouth is not None:
        talking = f"stylegan:v{lab.LATEST};seed={LAB_MOUTH_SEED};psi=0.7;edit={mouth.to_text()}"
        examples_shown[talking] = "Mouth opened by a feature-map edit (press Animate: it talks)"

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
                sefa = [gr.Slider(-5, 5, value=0, step=0.25, label=label(f"sefa{k}", names)) for k in range(SEFA_COUNT)]
            with gr.Accordion("Style mixing: coarse styles from this face, the rest from another", open=False):
                mixing = gr.Checkbox(False, label="Mix")
                mix = gr.Number(42, label="Second face's seed", precision=0, minimum=0, maximum=lab.MAX_SEED)
                cross = gr.Slider(0, generator.num_ws, value=generator.num_ws // 2, step=1, label="First style from the second face (low: layout, high: colour)")
            scale = gr.Slider(1, 8, value=4, step=1, label="Display size (× nearest-neighbour)")
            button = gr.Button("Draw", variant="primary")
            recipe = gr.Textbox(label="Recipe (paste one and press Enter to redraw it)", max_lines=1)
            examples = gr.Examples([[example] for example in examples_shown], inputs=[recipe],
                                   example_labels=list(examples_shown.values()))
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
                end = gr.Textbox(f"stylegan:v{lab.LATEST};seed=42;psi=0.7", label="Interpolate to recipe", max_lines=1)
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
