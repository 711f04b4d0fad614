"""Rank TwinGAN redesign arms at a small size, each trained from scratch and scored alike, before one long run.

An arm is `cartoon.twingan.train` at `--size` for `--steps` or `--minutes` (whichever comes first), then
`cartoon.twingan.evaluate` on a fixed subset of the held-out faces (the same draw for every arm), as
the long run is scored. Each arm appends one JSON row to runs/ablate/results.jsonl and prints a
Markdown row for docs/twingan-experiments.md:

    python -m cartoon.twingan.ablate --arm baseline --minutes 60
    python -m cartoon.twingan.ablate --arm wide --minutes 60 --width 16 --max-width 256
    python -m cartoon.twingan.ablate --arm critic-2-scales --minutes 60 --critic-scales 2
    python -m cartoon.twingan.ablate --arm colour --minutes 60 --colour-condition
    python -m cartoon.twingan.ablate --arm colour --resume    # a killed arm goes on with what is left of its budget
    python -m cartoon.twingan.ablate --arm colour --resume --against runs/ablate-baseline   # and paired with the baseline
    python -m cartoon.twingan.ablate --arm wide --steps 11572 --width 16 --max-width 256 --against weights/twingan-harness/baseline-64

Flags the harness does not know go to the trainer (model, critics, losses, data loading). The arm's
size, budget and trainer flags are kept in RUN/ablate.json; `--resume` takes them from there, and a
`--steps` or `--minutes` given with it sets a new budget. An arm whose budget is spent is only scored again.
Figures compare arms of one size and one evaluation subset: not the 128² figures of the shipped model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from cartoon.training import Run
from cartoon.training_state import ARGS_FILE
from cartoon.twingan import evaluate, train
from cartoon.twingan.framing import FRAMINGS
from cartoon.twingan.model import TwinGAN

SETTINGS = "ablate.json"
UNBOUNDED_STEPS = 10**9  # with --minutes alone the clock ends the arm


def build_parser() -> argparse.ArgumentParser:
    # no abbreviations: a trainer flag that begins like one of the harness's must still go to the trainer
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--arm", required=True, help="the arm's name, in its row and its default run folder")
    parser.add_argument("--size", type=int, default=64, help="the side the arm trains and is scored at")
    parser.add_argument("--steps", type=int, help="training steps")
    parser.add_argument("--minutes", type=float, help="training minutes, all the arm's sessions together")
    parser.add_argument("--run-dir", dest="run", help="(default: runs/ablate-ARM)")
    parser.add_argument("--resume", action="store_true", help="go on with the arm in --run-dir, as it was started")
    parser.add_argument("--eval-limit", type=int, default=0, help="held-out selfie photos and anime portraits scored "
                        "(0: all, 100 and 200, as the long run is scored)")
    parser.add_argument("--utkface-limit", type=int, default=100, help="held-out UTKFace faces scored, of 300: the set "
                        "translated three ways, the evaluation's costliest")
    parser.add_argument("--probe-train", type=int, default=200, help="UTKFace train images for the gender probe")
    parser.add_argument("--norm-batches", type=int, default=100, help="training batches whose batch-norm statistics the "
                        "scored generator gets, as export does")
    parser.add_argument("--eval-framing", choices=FRAMINGS, default="raw", help="the held-out portraits' framing every "
                        "arm is scored against (cartoon.twingan.framing; every arm trains on the portraits as they are): one "
                        "reference for arms that are to be compared")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-cache", action="store_true", help="do not keep Inception features of the held-out faces on disk")
    parser.add_argument("--against", metavar="RUN_OR_EXPORT", help="also compare paired with another arm of the same size on the "
                        "same faces: differences with 90%% intervals, and a PNG. Its run (e.g. runs/ablate-baseline) or its "
                        "export made with --norm-batches as here (e.g. weights/twingan-harness/baseline-64), which outlives the machine")
    parser.add_argument("--results", default="runs/ablate/results.jsonl")
    return parser


def arm_settings(args, trainer_flags: list[str]) -> dict:
    """The arm as it was started (RUN/ablate.json) or as this command starts it; a resume's budget flags win."""
    settings_path = Path(args.run) / SETTINGS
    has_checkpoint = Run(args.run, main=False).checkpoint_path.is_file()
    if args.resume and settings_path.is_file():
        settings = json.loads(settings_path.read_text())
        settings["trainer_flags"] += trainer_flags
        settings |= {name: getattr(args, name) for name in ("steps", "minutes") if getattr(args, name) is not None}
    elif has_checkpoint and not args.resume:
        raise SystemExit(f"{args.run} holds a trained arm: --resume to go on with it, or name another --run-dir")
    else:
        if args.steps is None and args.minutes is None:
            raise SystemExit("give the arm a budget: --steps, --minutes or both")
        settings = {"arm": args.arm, "size": args.size, "steps": args.steps, "minutes": args.minutes, "trainer_flags": trainer_flags}
    settings_path.parent.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings, indent=2) + "\n")
    return settings


def trainer_argv(args, settings: dict) -> list[str]:
    argv = settings["trainer_flags"] + ["--resolution", str(settings["size"]), "--run-dir", args.run, "--threads", str(args.threads),
                                        "--steps", str(settings["steps"] or UNBOUNDED_STEPS)]
    if settings["minutes"]:
        argv += ["--minutes", str(settings["minutes"])]
    return argv + (["--resume"] if Run(args.run, main=False).checkpoint_path.is_file() else [])


def reference_refusal(against: str, norm_batches: int) -> str | None:
    """Why `--against` cannot serve as the paired reference (None: it can), asked before the arm trains: a run
    folder with a checkpoint is exported as this evaluation scores its own arm; an export must have been made so."""
    folder = Path(against)
    if Run(against, main=False).checkpoint_path.is_file():
        return None
    if not (folder / "model.safetensors").is_file():
        return f"--against {against}: neither a run with a checkpoint nor an exported model"
    record = folder / ARGS_FILE
    if not record.is_file():
        return f"--against {against}: no {ARGS_FILE}, so how its batch-norm statistics were made is unknown"
    recorded = json.loads(record.read_text())["args"]
    if not recorded.get("freeze_norm_statistics") and recorded.get("norm_batches") != norm_batches:
        return (f"--against {against}: its batch-norm statistics come from {recorded.get('norm_batches')} batches, this "
                f"arm's from {norm_batches}; export the reference with --norm-batches {norm_batches}")
    return None


def commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def result_row(settings: dict, payload: dict, scores: dict, evaluation: dict) -> dict:
    """One arm's line of results.jsonl: what it was, how far it trained, and the figures that rank it."""
    selfie, reverse = scores["selfie"], scores["anime_to_human"]
    men = scores["utkface"].get("gender: male", {})
    paired = scores.get("against", {}).get("rows", {})
    steps, seconds = payload["step"], payload.get("trained_seconds", 0.0)
    generator = TwinGAN(**payload["config"])
    return {
        "arm": settings["arm"], "size": settings["size"], "trainer_flags": settings["trainer_flags"],
        "generator_parameters": sum(p.numel() for p in generator.parameters()),
        "steps": steps, "seconds_trained": seconds, "seconds_per_step": seconds / max(steps, 1),
        "selfie_kid_x100": selfie["kid_x100"], "selfie_kid_x100_std": selfie["kid_x100_std"], "selfie_fid": selfie["fid"],
        # against the held-out portraits with no near-duplicate in training (None: scored before that reference)
        "selfie_kid_x100_strict": selfie.get("kid_x100_strict"), "selfie_kid_x100_strict_std": selfie.get("kid_x100_strict_std"),
        "selfie_nme": selfie["landmark_nme"], "selfie_faces_found": selfie["faces_found"], "selfie_own_nearest": selfie["own_nearest"],
        "anime_to_human_kid_x100": reverse["kid_x100"], "anime_to_human_kid_x100_std": reverse["kid_x100_std"],
        "men_turned_female": men.get("male_turned_female"), "men_read_male": men.get("read_as_male_reconstruction_count"),
        # colour-conditioned arms: the share of requested colours the classifier reads on the translations
        **{f"{kind}_as_asked": scores.get("colour_control", {}).get(kind, {}).get("as_asked") for kind in ("hair", "eyes")},
        # paired with another arm: this − that, with 90 % bootstrap intervals over resampled faces
        "against": {name: {key: r[key] for key in ("kid_x100_difference", "kid_x100_interval", "nme_difference", "nme_interval") if key in r}
                    for name, r in paired.items() if name in ("selfie2anime photos", "selfie2anime anime → human")} or None,
        "evaluation": evaluation, "commit": commit(), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


MARKDOWN_HEADER = ("| arm | size | steps (minutes) | s/step | selfie KID×100 | anime → human KID×100 | selfie NME | faces found "
                   "| men → female | trainer flags |\n|---|---|---|---|---|---|---|---|---|---|")


def markdown_row(row: dict) -> str:
    nme = f"{row['selfie_nme']:.3f}" if row["selfie_nme"] is not None else "–"
    men = f"{row['men_turned_female']:.0%} of {row['men_read_male']}" if row["men_turned_female"] is not None else "–"
    paired = (row["against"] or {}).get("selfie2anime photos")
    difference = (f" ({paired['kid_x100_difference']:+.2f} [{paired['kid_x100_interval'][0]:+.2f}, {paired['kid_x100_interval'][1]:+.2f}]"
                  f" against {row['evaluation']['against']})" if paired else "")
    return (f"| {row['arm']} | {row['size']}² | {row['steps']:,} ({row['seconds_trained'] / 60:.0f}) | {row['seconds_per_step']:.3f} "
            f"| {row['selfie_kid_x100']:.2f} ± {row['selfie_kid_x100_std']:.2f}{difference} "
            f"| {row['anime_to_human_kid_x100']:.2f} ± {row['anime_to_human_kid_x100_std']:.2f} | {nme} "
            f"| {row['selfie_faces_found']:.0%} | {men} | `{' '.join(row['trainer_flags']) or '(defaults)'}` |")


def main(argv=None) -> dict:
    args, trainer_flags = build_parser().parse_known_args(argv)
    args.run = args.run or f"runs/ablate-{args.arm}"
    if args.against and (reason := reference_refusal(args.against, args.norm_batches)):
        raise SystemExit(reason)
    against_export = bool(args.against) and not Run(args.against, main=False).checkpoint_path.is_file()
    settings = arm_settings(args, trainer_flags)
    train.main(trainer_argv(args, settings))

    payload = Run(args.run, main=False).read_checkpoint()
    out = Path(args.run) / "eval.json"
    flags = ["--run-dir", args.run, "--limit", str(args.eval_limit), "--utkface-limit", str(args.utkface_limit),
             "--probe-train", str(args.probe_train), "--norm-batches", str(args.norm_batches), "--threads", str(args.threads),
             "--anime-framing", args.eval_framing, "--out", str(out)] + (["--no-cache"] if args.no_cache else [])
    started = time.time()
    if against_export:  # an arm exported as it is scored, kept in git
        flags += ["--against", args.against]
    elif args.against:  # the other arm's generator as this evaluation scores its own: statistics over as many batches
        other = str(Path(args.run) / "against")
        train.main(["--run-dir", args.against, "--export", other, "--norm-batches", str(args.norm_batches), "--threads", str(args.threads)])
        flags += ["--against", other]
    evaluate.main(flags)
    evaluation = {"limit": args.eval_limit, "utkface_limit": args.utkface_limit, "probe_train": args.probe_train, "anime_framing": args.eval_framing,
                  "norm_batches": args.norm_batches, "against": args.against, "seconds": round(time.time() - started, 1), "out": str(out)}
    row = result_row(settings, payload, json.loads(out.read_text()), evaluation)
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    with open(args.results, "a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(f"\n{MARKDOWN_HEADER}\n{markdown_row(row)}")
    return row


if __name__ == "__main__":
    main()
