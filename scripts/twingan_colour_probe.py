"""Colour control of a TwinGAN run on 40 held-out selfies, its weights and norm statistics taken
apart: the exported moving average, the checkpoint's average and live generator, each under
running and under batch statistics, and the live weights under the export's statistics.

    python scripts/twingan_colour_probe.py EXPORT_FOLDER RUN_FOLDER
"""

import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon import data  # noqa: E402
from cartoon.training import Run  # noqa: E402
from cartoon.twingan.colour import load_judge  # noqa: E402
from cartoon.twingan.evaluate import colour_control  # noqa: E402
from cartoon.twingan.held_out import held_out, load_faces  # noqa: E402
from cartoon.twingan.model import TwinGAN  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    export, run = sys.argv[1], sys.argv[2]
    photos = load_faces(held_out(data.SELFIE_PHOTOS, 40, random.Random(0)), 128)
    judge = load_judge()
    payload = Run(run, main=False).read_checkpoint()

    def is_statistic(key: str) -> bool:
        return "running_" in key or "num_batches_tracked" in key

    def model(weights: str | None = None, statistics: str = "own") -> TwinGAN:
        """The export, or the checkpoint's `weights` ("ema", "generator") with their own statistics or the export's."""
        built = TwinGAN.from_pretrained(export)
        if weights is not None:
            state = dict(payload[weights])
            if statistics == "export":
                state |= {k: v for k, v in built.state_dict().items() if is_statistic(k)}
            built.load_state_dict(state)
        return built

    readings = [("export (moving average, re-estimated statistics)", model().eval()),
                ("export, batch statistics", model().train()),
                ("checkpoint moving average, checkpoint statistics", model("ema").eval()),
                ("live, checkpoint statistics", model("generator").eval()),
                ("live, batch statistics", model("generator").train()),
                ("live, the export's statistics", model("generator", "export").eval())]
    for name, translator in readings:
        result = colour_control(translator, photos, judge)
        print(f"{name}: hair {result['hair']['as_asked']:.2f}, eyes {result['eyes']['as_asked']:.2f}", flush=True)


if __name__ == "__main__":
    main()
