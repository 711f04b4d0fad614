"""The TwinGAN trainer's flags: data, model and critics, losses, schedule, export.

A `--resume` keeps the checkpoint's sizes and colour condition whatever the flags
here say (`cartoon.twingan.checkpoint.adopt_generator_config`), and its data (folders, batch size)
unless a flag names them; `--resume-from` takes an export's recorded arguments as the
defaults (`parse_args`).
"""

from __future__ import annotations

import argparse

from cartoon.training import add_common_args
from cartoon.training_state import parse_resumable


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    """Every flag of `cartoon.twingan.train`; `description` heads its --help."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "twingan")
    parser.add_argument("--photos", nargs="+", help="human photo folders (default: a resumed or exported run's own, "
                        "else the selfie2anime photos and UTKFace)")
    parser.add_argument("--anime", nargs="+", help="anime portrait folders (default: a resumed or exported run's own, "
                        "else the selfie2anime drawings)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--width", type=int, default=8, help="channels at full resolution, doubling per halving (8 and 128: the shipped model)")
    parser.add_argument("--max-width", type=int, default=128)
    parser.add_argument("--domain-skips", action="store_true", help="each domain reads the encoder's U-Net skips through its "
                        "own 1×1 convolution, identity at the start (cartoon.twingan.model.DomainSkip), so the anime side "
                        "can choose what of the photo's features it keeps")
    parser.add_argument("--colour-condition", action="store_true", help="condition the anime side on hair and eye "
                        "colour (cartoon.twingan.colour): portraits are reconstructed with their tags, photos translated "
                        "with random requests, and the colour classifier holds the translations to them")
    parser.add_argument("--colour-weight", type=float, default=1.0, help="with --colour-condition: weight of the "
                        "classifier's cross-entropy on the requested hair and eye colours of each photo's translation")
    parser.add_argument("--tag-confidence", type=float, default=0.5, help="with --colour-condition: an anime tag the "
                        "classifier read with less confidence is 'keep', not a colour")
    parser.add_argument("--critic-width", type=int, help="the critics' channels at full resolution (default: --width)")
    parser.add_argument("--critic-max-width", type=int, help="(default: --max-width)")
    parser.add_argument("--critic-scales", type=int, default=1, help="pixel critics per domain, each at half the "
                        "previous one's image size (pix2pixHD's multi-scale critic; 1: one at full size)")
    parser.add_argument("--minutes", type=float, help="stop when the run's training (all its sessions together) has "
                        "taken this many minutes, or at --steps if sooner; the checkpoint says the step reached")
    parser.add_argument("--init-from", metavar="FOLDER", help="fine-tune a saved model (config.json + model.safetensors, "
                        "as in weights/twingan): the generator and its average start as that model, sized by its config, "
                        "with new critics and optimisers")
    parser.add_argument("--critic-warmup", type=int, default=0, metavar="STEPS", help="for the run's first STEPS steps "
                        "train only the critics, so new critics learn the generator's output before it sees their gradient")
    parser.add_argument("--freeze-norm-statistics", action="store_true", help="batch norms normalise by their running "
                        "statistics in training as at inference, and keep them, so the critics judge exactly what the "
                        "model will make (with --init-from: the saved model's statistics; on a --resume: from there on, "
                        "the critics kept, with the statistics export would give the run's average); export writes them")
    parser.add_argument("--content-weight", type=float, default=0.0, help="VGG16 relu4_3 L1 between each photo and its anime translation (0: off)")
    parser.add_argument("--cycle-content-weight", type=float, default=0.0, help="VGG16 relu4_3 L1 between each photo "
                        "and its round trip human → anime → human, so the way back keeps what the photo's features say "
                        "of the face (gender, age) and not only its pixels (0: off)")
    parser.add_argument("--landmark-weight", type=float, default=0.0, help="each photo's anime translation keeps the "
                        "photo's 5 RetinaFace landmarks (cartoon.faces.LandmarkLoss, in eye distances; needs --resolution "
                        "64 or more; 0: off)")
    parser.add_argument("--landmark-measure", choices=["points", "pose"], default="points", help="what the landmark "
                        "term keeps: the 5 points where they are, or the head's pose (eye, nose and mouth centres, eye "
                        "and mouth lines), which leaves anime eye spacing and mouth width free")
    parser.add_argument("--vgg-size", type=int, default=64, help="side at which the VGG16 content terms see images")
    parser.add_argument("--critic-lr", type=float, help="the critics' learning rate (default: --lr, the generator's)")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--diffaugment", default="color,translation,cutout", help="policy, or 'none'")
    parser.add_argument("--export", metavar="FOLDER", help="only export RUN's EMA generator and its training state to FOLDER and exit")
    parser.add_argument("--recalibrate", metavar="FOLDER", help="only re-estimate the batch-norm statistics of the "
                        "saved model in FOLDER (in place) and exit")
    parser.add_argument("--norm-batches", type=int, default=400, help="training batches (of --photos and --anime, and "
                        "--batch-size: a run's own unless named) whose mean batch-norm statistics --export and "
                        "--recalibrate write, and --freeze-norm-statistics on a --resume freezes (0: keep the running estimates)")
    parser.set_defaults(batch_size=None, lr=2e-4, log_every=10, sample_every=250, save_every=100)
    return parser


def parse_args(argv=None, description: str | None = None) -> argparse.Namespace:
    # a TwinGAN --resume adopts its checkpoint's sizes and data itself (checkpoint.recorded_args) and takes
    # loss weights, rates and schedule from the command, as its trainer's docstring says
    return parse_resumable(build_parser(description), argv, checkpoint_defaults=False)
