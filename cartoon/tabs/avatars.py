"""The Avatar tab: ACGAN faces with the hair and eye colours asked for, reproducible from their recipe."""

from __future__ import annotations

import os

import gradio as gr

from cartoon.runtime import on_inference_threads
from cartoon.tabs.shared import MODEL_QUEUE, png_download, weights_missing


def avatar_tab() -> gr.Textbox:
    """The Avatar tab; returns the textbox holding the recipe of the face last picked in its grid."""
    from cartoon.acgan import EYE_COLOURS, HAIR_COLOURS, MAX_FACES, MAX_SEED, MODEL_VERSIONS, RANDOM, Recipe, avatars
    from cartoon.media import grid, upscale

    def show(recipe, scale):
        """The tab's outputs for a recipe, drawn by the generator version it names."""
        try:
            faces, own = avatars(recipe)
            sheet = upscale(grid(faces), int(scale))
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot draw these avatars") from None
        except FileNotFoundError:
            raise weights_missing(MODEL_VERSIONS[recipe.version]) from None
        gallery = [(upscale(face, int(scale)), str(r)) for face, r in zip(faces, own)]
        message = f"{recipe.n} face{'s' if recipe.n > 1 else ''}. Click a face to get its own recipe (and use it in Interpolate)."
        return sheet, gallery, [str(r) for r in own], str(recipe), gr.DownloadButton(value=png_download(sheet, "avatars"), visible=True), message

    @on_inference_threads
    def draw(hair, eyes, seed, count, trunc, scale):
        try:
            recipe = Recipe(hair, eyes, int(seed), int(count), round(float(trunc), 3))
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot draw these avatars") from None
        return show(recipe, scale)

    @on_inference_threads
    def from_recipe(text, scale):
        try:
            recipe = Recipe.parse(text)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot read this recipe") from None
        # drawn by the version the recipe names, so an older recipe shows its own faces
        return (recipe.hair, recipe.eyes, recipe.seed, recipe.n, recipe.trunc) + show(recipe, scale)

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
