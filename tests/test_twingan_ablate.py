"""The TwinGAN ablation harness on tiny made-up folders: an arm trains, is scored on held-out faces, writes its row,
and a killed arm goes on; the trainer's time budget and the redesign switches it passes on."""

import json
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon import data
from cartoon.twingan import ablate
from cartoon.twingan.model import MultiScaleCritic
from cartoon.twingan import train as train_module
from cartoon.twingan.train import main as train_main

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--width", "8", "--max-width", "32", "--batch-size", "2", "--workers", "0", "--log-every", "1",
        "--sample-every", "100", "--save-every", "100"]


def write_faces(folder, names, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((40, 40)).save(folder / name)


@pytest.fixture
def project_data(tmp_path, monkeypatch):
    """Made-up selfie, anime and UTKFace folders standing for the project's, 4 of each held out."""
    photos, anime, utk = tmp_path / "photo", tmp_path / "anime", tmp_path / "utkface"
    write_faces(photos, [f"{i}.jpg" for i in range(8)], 0)
    write_faces(anime, [f"{i}.jpg" for i in range(8)], 1)
    # UTKFace names carry age_gender_race: men and women, children and adults, in both splits
    write_faces(utk, [f"{age}_{i % 2}_0_{i}.jpg" for i, age in enumerate([8, 30, 30, 8, 45, 70, 25, 33, 9, 61, 40, 22])], 2)
    for name, folder in (("SELFIE_PHOTOS", photos), ("SELFIE_ANIME", anime), ("UTKFACE", utk)):
        monkeypatch.setattr(data, name, folder)
    monkeypatch.setattr(data, "HOLDOUT", {photos: 4, anime: 4, utk: 4})
    monkeypatch.chdir(tmp_path)
    return tmp_path


def harness(*flags):
    return ablate.main(["--size", "32", "--eval-limit", "0", "--utkface-limit", "3", "--probe-train", "6", "--norm-batches", "2", "--no-cache", *flags])


def test_an_arm_trains_is_scored_on_held_out_faces_writes_its_row_and_resumes(project_data, capsys):
    row = harness("--arm", "two-scales", "--steps", "2", "--critic-scales", "2", *TINY)
    assert row["steps"] == 2 and row["size"] == 32
    assert row["seconds_trained"] > 0 and row["seconds_per_step"] == row["seconds_trained"] / 2
    assert row["trainer_flags"][:2] == ["--critic-scales", "2"]
    assert row["generator_parameters"] > 0
    # scored on the held-out faces only (every selfie and portrait, 3 UTKFace faces) by the evaluation the long run uses
    scores = json.loads((project_data / "runs/ablate-two-scales/eval.json").read_text())
    assert scores["resolution"] == 32 and scores["held_out"] == {"selfie_photos": 4, "anime": 4, "anime_strict": 4, "utkface": 3}
    assert row["selfie_kid_x100"] == scores["selfie"]["kid_x100"] and np.isfinite(row["anime_to_human_kid_x100"])
    # no made-up portrait is listed as a near-duplicate, so the strict reference is the whole held-out set
    assert row["selfie_kid_x100_strict"] == pytest.approx(scores["selfie"]["kid_x100"])
    rows = [json.loads(line) for line in (project_data / "runs/ablate/results.jsonl").read_text().splitlines()]
    assert rows == [json.loads(json.dumps(row))]
    printed = capsys.readouterr().out
    assert ablate.MARKDOWN_HEADER in printed and "| two-scales | 32² | 2 (" in printed

    payload = torch.load(project_data / "runs/ablate-two-scales/checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["critic_config"]["critic_scales"] == 2
    assert any(key.startswith("0.critics.1.") for key in payload["critics"])  # each domain's ½× critic

    # a killed arm goes on as it was started (its critics from RUN/ablate.json), to a new budget
    with pytest.raises(SystemExit, match="--resume"):
        harness("--arm", "two-scales", "--steps", "3")
    again = harness("--arm", "two-scales", "--resume", "--steps", "3", "--against", "runs/ablate-two-scales")
    assert again["steps"] == 3 and again["trainer_flags"] == row["trainer_flags"]
    # paired with an arm (here itself, so every difference is nil) on the same faces, with a picture of both
    assert again["against"]["selfie2anime photos"]["kid_x100_difference"] == pytest.approx(0, abs=1e-9)
    assert (project_data / "runs/ablate-two-scales/eval.png").is_file() and "(+0.00 [+0.00, +0.00] against" in capsys.readouterr().out
    log = [json.loads(line)["step"] for line in (project_data / "runs/ablate-two-scales/log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3]
    assert len((project_data / "runs/ablate/results.jsonl").read_text().splitlines()) == 2

    # the same arm kept as an export (as git keeps a reference arm when the machine goes) pairs as its run did
    train_main(["--run-dir", "runs/ablate-two-scales", "--export", "kept", "--norm-batches", "2", "--threads", "1"])
    kept = harness("--arm", "two-scales", "--resume", "--against", "kept")
    assert kept["evaluation"]["against"] == "kept"
    assert kept["against"]["selfie2anime photos"]["kid_x100_difference"] == pytest.approx(0, abs=1e-9)
    # a reference that is not one, or whose statistics came from other batches than the arm's, is refused before any training
    for against, reason in (("nowhere", "neither a run"), ("kept", "from 2 batches, this arm's from 3")):
        with pytest.raises(SystemExit, match=reason):
            ablate.main(["--arm", "untrained", "--steps", "1", "--norm-batches", "3", "--against", against, *TINY])
    assert not (project_data / "runs/ablate-untrained").exists()


def test_an_arm_needs_a_budget(project_data):
    with pytest.raises(SystemExit, match="budget"):
        harness("--arm", "nothing", *TINY)


def test_the_trainer_stops_at_its_minutes_and_a_resume_spends_only_what_is_left(project_data):
    run = project_data / "run"
    common = TINY + ["--resolution", "32", "--run-dir", str(run), "--threads", "1", "--steps", "50"]
    # a budget no step fits in: the first step ends the run, checkpointed with the step and the time it took
    train_main(common + ["--minutes", "1e-9"])
    payload = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["step"] == 1 and payload["trained_seconds"] > 0
    train_main(common + ["--minutes", "1e-9", "--resume"])  # spent: nothing more is trained
    assert torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["step"] == 1
    train_main(common + ["--resume", "--steps", "3"])  # no budget: on to --steps
    assert torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["step"] == 3


def test_an_arm_stopped_by_a_signal_keeps_its_step_and_is_not_scored_until_it_resumes(project_data, monkeypatch, request):
    # Ctrl-C as a terminal delivers it, whatever pytest was started with: a background job's ignored SIGINT stays
    # ignored by the trainer, rightly, and would leave nothing to test
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, before))
    drawn = train_module.anime_batch
    calls = []

    def killed_during_the_second_step(*batch):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while the second step trains
        return drawn(*batch)

    monkeypatch.setattr(train_module, "anime_batch", killed_during_the_second_step)
    with pytest.raises(SystemExit) as stopped:
        harness("--arm", "stopped", "--steps", "4", *TINY)
    assert stopped.value.code == 128 + signal.SIGINT
    run = project_data / "runs/ablate-stopped"
    assert torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["step"] == 2
    assert not (run / "eval.json").exists()  # a half-trained arm is not scored as if its budget were spent

    monkeypatch.setattr(train_module, "anime_batch", drawn)
    assert harness("--arm", "stopped", "--resume")["steps"] == 4


def test_a_run_with_two_critic_scales_builds_a_multi_scale_critic_per_domain():
    from cartoon.twingan.checkpoint import build_models
    from cartoon.twingan.train import build_parser

    args = build_parser().parse_args(["--resolution", "32", "--width", "8", "--max-width", "32", "--critic-scales", "2"])
    _, critics = build_models(args)
    assert all(isinstance(c, MultiScaleCritic) for c in critics)
    assert critics[0](torch.zeros(2, 3, 32, 32)).shape == (2, 2)
