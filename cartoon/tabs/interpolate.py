"""The Interpolate tab: ACGAN morphs between two avatar recipes and walks through random faces, as GIF and MP4."""

from __future__ import annotations

import gradio as gr

from cartoon.runtime import on_inference_threads
from cartoon.tabs.shared import MODEL_QUEUE, download_folder, weights_missing


def interpolate_tab(picked: gr.Textbox):
    """The Interpolate tab; `picked` is the Avatar tab's picked-face recipe, offered as an endpoint."""
    from cartoon.acgan import MODEL_VERSIONS, Recipe, first_face, morph, walk
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
            raise weights_missing(MODEL_VERSIONS[first_face(start).version]) from None
        return export(result, scale, fps, "morph") + (f"{len(result)} frames, {mode}: colours move linearly. MP4 via imageio-ffmpeg's bundled ffmpeg." if video_encoder() else f"{len(result)} frames (no MP4 encoder installed).",)

    @on_inference_threads
    def run_walk(seed, stops, frames, mode, scale, fps):
        try:
            result, endpoints = walk(int(seed), int(stops), int(frames), mode)
        except ValueError as error:
            raise gr.Error(str(error), title="Cannot walk") from None
        except FileNotFoundError:
            raise weights_missing(MODEL_VERSIONS[Recipe().version]) from None
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
                    start = gr.Textbox(str(Recipe("blue", "red", 7, 1, 0.8)), label="Start recipe", scale=4)
                    start_pick = gr.Button("← picked face", scale=1, min_width=80)
                with gr.Row():
                    end = gr.Textbox(str(Recipe("blonde", "green", 42, 1, 0.8)), label="End recipe", scale=4)
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
