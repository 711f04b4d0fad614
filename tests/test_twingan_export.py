"""TwinGAN's export of a tiny run: its norm statistics, resuming from it, refusing removed designs, the CLI on it."""

import argparse
import json
import shutil

import pytest
import torch
from PIL import Image
from test_twingan_train import MACHINE, NORM_BATCHES, TINY, trained, write_faces  # noqa: F401 (a fixture)

from cartoon import data
from cartoon.__main__ import main as cartoon_main
from cartoon.training import linear_decay
from cartoon.twingan import get_model
from cartoon.twingan.checkpoint import estimate_norm_statistics
from cartoon.twingan.data import training_batches
from cartoon.twingan.held_out import load_generator
from cartoon.twingan.losses import translate_both_ways
from cartoon.twingan.model import ANIME, LAST_WITH_VGG_ENCODER, TwinGAN
from cartoon.twingan.train import main as train_main


def test_export_is_the_checkpoints_ema_generator_with_its_own_norm_statistics(trained):
    payload = torch.load(trained / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["step"] == 4
    exported = TwinGAN.from_pretrained(str(trained / "export")).state_dict()
    parameters = dict(TwinGAN(**payload["config"]).named_parameters())
    assert all(torch.equal(exported[name], payload["ema"][name]) for name in parameters)
    statistics = [name for name in exported if name.endswith(("running_mean", "running_var"))]
    assert statistics and not any(torch.equal(exported[name], payload["ema"][name]) for name in statistics)

    # the estimate does not depend on the statistics it replaces: re-estimating the export, over
    # the same batches, writes it again
    folders = ["--photos", str(trained / "photos"), "--anime", str(trained / "anime")]
    shutil.copytree(trained / "export", trained / "again")
    train_main(["--recalibrate", str(trained / "again")] + NORM_BATCHES + folders)
    again = TwinGAN.from_pretrained(str(trained / "again")).state_dict()
    assert all(torch.equal(again[name], exported[name]) for name in exported)

    # --norm-batches 0: the running estimates the average was checkpointed with
    train_main(["--run-dir", str(trained / "run"), "--export", str(trained / "as-is"), "--norm-batches", "0"])
    as_is = TwinGAN.from_pretrained(str(trained / "as-is")).state_dict()
    assert all(torch.equal(as_is[name], payload["ema"][name]) for name in as_is)


def test_a_run_is_exported_and_evaluated_on_its_own_data_unless_told_otherwise(trained, tmp_path, monkeypatch):
    # the trainer's default folders, here of 16 other faces each, enough for its default batch
    photos, anime = tmp_path / "photos", tmp_path / "anime"
    write_faces(photos, 16, 2)
    write_faces(anime, 16, 3)
    for name, folder in (("SELFIE_PHOTOS", photos), ("UTKFACE", photos), ("SELFIE_ANIME", anime)):
        monkeypatch.setattr(data, name, folder)
    run = str(trained / "run")
    norm_batches = ["--norm-batches", "3", "--threads", "1"]
    fixture_export = TwinGAN.from_pretrained(str(trained / "export")).state_dict()  # its folders and batch size named outright
    recorded = torch.load(trained / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)["training_data"]
    assert recorded == {"photos": [str(trained / "photos")], "anime": [str(trained / "anime")], "batch_size": 2}

    train_main(["--run-dir", run, "--export", str(tmp_path / "own")] + norm_batches)
    own = TwinGAN.from_pretrained(str(tmp_path / "own")).state_dict()
    assert all(torch.equal(own[name], fixture_export[name]) for name in fixture_export)
    evaluated = load_generator(argparse.Namespace(run=run, weights=None, norm_batches=3, threads=1))
    assert not evaluated.training
    assert all(torch.equal(evaluated.state_dict()[name], own[name]) for name in own)

    statistics = [name for name in own if name.endswith(("running_mean", "running_var"))]
    train_main(["--run-dir", run, "--export", str(tmp_path / "other"), "--photos", str(photos), "--anime", str(anime)] + norm_batches)
    other = TwinGAN.from_pretrained(str(tmp_path / "other")).state_dict()
    assert statistics and not any(torch.equal(other[name], own[name]) for name in statistics)
    # --norm-batches 0: the running statistics the checkpoint holds, which export would not ship
    as_checkpointed = load_generator(argparse.Namespace(run=run, weights=None, norm_batches=0, threads=1)).state_dict()
    assert not any(torch.equal(as_checkpointed[name], own[name]) for name in statistics)


def test_statistics_are_drawn_from_folders_smaller_than_a_batch(tmp_path):
    write_faces(tmp_path / "photos", 3, 4)
    write_faces(tmp_path / "anime", 9, 5)
    flags = argparse.Namespace(photos=[str(tmp_path / "photos")], anime=[str(tmp_path / "anime")], batch_size=8, seed=0)
    photos, anime = training_batches(flags, 16)
    assert [len(next(photos)) for _ in range(3)] == [3, 3, 3]  # one short batch an epoch, as training draws it
    assert [len(next(anime)) for _ in range(3)] == [8, 8, 8]


def test_norm_statistics_are_the_mean_over_every_training_pass():
    torch.manual_seed(0)
    model = TwinGAN(resolution=16, width=4, max_width=8, skip_resolutions=[8])
    photos, anime = [torch.rand(2, 3, 16, 16) * 2 - 1 for _ in range(3)], [torch.rand(2, 3, 16, 16) - 1 for _ in range(3)]
    norm = model.start_norm.norms[ANIME]
    seen = []  # the channel means of every batch the anime norm normalises in three training steps
    hook = norm.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].mean((0, 2, 3))))
    with torch.no_grad():
        for human, drawn in zip(photos, anime):
            translate_both_ways(model.train(), human, drawn)
    hook.remove()
    assert len(seen) == 3 * 3  # per step: the photos, the anime portraits, and their human versions on the way back
    estimate_norm_statistics(model, iter(photos), iter(anime), batches=3)
    assert not model.training and norm.momentum == 0.1
    assert torch.allclose(norm.running_mean, torch.stack(seen).mean(0), atol=1e-6)


def read_log(run) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def weights(state: dict) -> list[str]:
    """The names of a state dict's trained weights (spectral norms' power-iteration vectors move with every pass)."""
    return [name for name in state if name.endswith(("weight", "weight_orig", "bias", "scale", "shift"))]


def test_an_export_carries_the_training_state_and_resume_from_goes_on_from_it(trained, tmp_path):
    run, exported, still, went_on = (tmp_path / name for name in ("run", "export", "still", "went-on"))
    # an --ema-decay below the warm-up's (4/13 at step 3): each step's share of the average is the flag's own
    train_main(TINY + ["--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--run-dir", str(run),
                       "--steps", "3", "--lr-decay-from", "2", "--ema-decay", "0.2"])
    train_main(["--run-dir", str(run), "--export", str(exported)] + NORM_BATCHES)
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    record = json.loads((exported / "training.json").read_text())
    assert record["step"] == checkpoint["step"] == 3 and record["modules"] == ["critics", "generator"]
    assert record["args"]["photos"] == [str(trained / "photos")] and record["args"]["batch_size"] == 2  # its data, named
    assert {"run", "threads", "export"}.isdisjoint(record["args"])
    kept = [name for name in ("opt_d", "opt_g") if name not in record["moments_omitted"]]
    assert "opt_d" in kept  # the critics' moments, first in line, fit the budget
    exported_ema = TwinGAN.from_pretrained(str(exported)).state_dict()  # the average is model.safetensors, as ever
    assert all(torch.equal(exported_ema[name], checkpoint["ema"][name]) for name in weights(exported_ema))

    # At rate 0 a step leaves every weight as it was restored: the run's, in bfloat16. No data flags: the run's own.
    train_main(["--resume-from", str(exported), "--run-dir", str(still), "--steps", "4", "--lr", "0"] + MACHINE)
    restored = torch.load(still / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert restored["step"] == 4 and restored["training_data"] == checkpoint["training_data"]
    for key in ("generator", "critics"):
        assert all(torch.allclose(restored[key][name], checkpoint[key][name], rtol=1e-2, atol=0) for name in weights(checkpoint[key]))
    for name in ("opt_d", "opt_g"):  # Adam's count goes on where its moments were kept, else starts afresh
        assert {int(s["step"]) for s in restored[name]["state"].values()} == {4 if name in kept else 1}

    train_main(["--resume-from", str(exported), "--run-dir", str(went_on), "--steps", "4"] + MACHINE)
    assert [r["step"] for r in read_log(went_on)] == [4]
    # the schedule is the run's (rate, decay start) at the step it reached, towards the new --steps
    lr = record["args"]["lr"] * linear_decay(3, record["args"]["lr_decay_from"], 4)
    assert 0 < lr < record["args"]["lr"] and read_log(went_on)[0]["lr"] == pytest.approx(lr, rel=1e-4)
    went = torch.load(went_on / "checkpoint.pt", map_location="cpu", weights_only=True)
    # the average went on from the exported one, a step's share of the way to the generator
    share = 1 - record["args"]["ema_decay"]
    parameters = [name for name, _ in TwinGAN(**went["config"]).named_parameters()]
    assert all(torch.allclose(went["ema"][name], torch.lerp(exported_ema[name], went["generator"][name], share), rtol=0, atol=1e-7)
               for name in parameters)


def test_a_run_or_export_of_a_removed_design_is_refused_before_any_state_loads(trained, tmp_path):
    # AdaLIN and CAM lost at 64² and were removed: what they saved says so, not a missing-weights traceback
    run, exported = tmp_path / "run", tmp_path / "export"
    run.mkdir()
    payload = torch.load(trained / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    torch.save({**payload, "config": {**payload["config"], "norm": "adalin"}}, run / "checkpoint.pt")
    for flags in (["--resume", "--steps", "5"], ["--export", str(tmp_path / "none")] + NORM_BATCHES):
        with pytest.raises(SystemExit, match="norm='adalin' was saved by a TwinGAN design that lost and was removed"):
            train_main(["--run-dir", str(run)] + flags + MACHINE)
    shutil.copytree(trained / "export", exported)
    record = json.loads((exported / "training.json").read_text())
    (exported / "training.json").write_text(json.dumps({**record, "args": {**record["args"], "attention": "cam"}}))
    with pytest.raises(SystemExit, match="attention='cam'"):
        train_main(["--resume-from", str(exported), "--run-dir", str(tmp_path / "went-on"), "--steps", "5"] + MACHINE)
    assert not (tmp_path / "none").exists() and not (tmp_path / "went-on" / "checkpoint.pt").exists()


def recording_copies(trained, tmp_path):
    """A copy of the trained run and of its export, and `recorded(kept=None, **args)`, which rewrites both as if the
    run had recorded `args` (and its checkpoint held `kept` too); the folder a run going on from the export uses, and
    the run's checkpoint as trained."""
    run, exported, went_on = tmp_path / "run", tmp_path / "export", tmp_path / "went-on"
    run.mkdir()
    shutil.copytree(trained / "export", exported)
    payload = torch.load(trained / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    record = json.loads((exported / "training.json").read_text())

    def recorded(kept=None, **args):
        torch.save({**payload, **(kept or {}), "args": {**payload["args"], **args}}, run / "checkpoint.pt")
        (exported / "training.json").write_text(json.dumps({**record, "args": {**record["args"], **args}}))

    return run, exported, went_on, payload, recorded


def test_a_removed_term_recorded_on_is_refused_and_recorded_off_is_ignored(trained, tmp_path):
    # The feature critics and likeness terms lost and were removed. Every run recorded their weights, the current
    # line's at 0 (off), and those go on; a run that trained with one stops with a message instead of dropping it.
    run, exported, went_on, payload, recorded = recording_copies(trained, tmp_path)

    recorded(feature_critic_weight=0.0, likeness_weight=0.0, anime_likeness_weight=0.0)
    train_main(TINY + ["--run-dir", str(run), "--resume", "--steps", "5"])
    train_main(["--resume-from", str(exported), "--run-dir", str(went_on), "--steps", "5"] + MACHINE)
    assert [r["step"] for r in read_log(run)] == [r["step"] for r in read_log(went_on)] == [5]  # went on from step 4

    recorded(likeness_weight=5.0, anime_likeness_weight=5.0)
    for flags in (["--run-dir", str(run), "--resume", "--steps", "6"], ["--run-dir", str(run), "--export", str(tmp_path / "none")],
                  ["--resume-from", str(exported), "--run-dir", str(tmp_path / "refused"), "--steps", "6"]):
        with pytest.raises(SystemExit, match="recorded with --likeness-weight 5, --anime-likeness-weight 5: .*commit 2498e62 still trains them"):
            train_main(flags + MACHINE)
    # a checkpoint from before the arguments were recorded names its feature critics' weight alone
    legacy = {key: value for key, value in payload.items() if key != "args"}
    torch.save({**legacy, "feature_critic_weight": 1.0}, run / "checkpoint.pt")
    with pytest.raises(SystemExit, match="recorded with --feature-critic-weight 1: "):
        train_main(["--run-dir", str(run), "--resume", "--steps", "6"] + MACHINE)
    assert not (tmp_path / "none").exists() and not (tmp_path / "refused" / "checkpoint.pt").exists()


def test_a_lost_trainer_switch_recorded_on_is_refused_and_recorded_off_is_ignored(trained, tmp_path):
    # The contrastive term, the training portraits' framing and the skip flag lost their arms and left the trainer. A
    # run recorded with one on stops with a message instead of going on without it; recorded off (the default skips),
    # it goes on, and heads a checkpoint still holds are left unread.
    run, exported, went_on, payload, recorded = recording_copies(trained, tmp_path)

    unframed = {"training_data": {**payload["training_data"], "anime_framing": "raw"}}
    recorded({"nce": {"heads.8.0.weight": torch.zeros(256, 32)}, **unframed}, nce_weight=0.0, nce_sides=[8], anime_framing="raw",
             skip_resolutions=[8, 16, 32])
    train_main(["--run-dir", str(run), "--export", str(tmp_path / "off")] + NORM_BATCHES)
    train_main(TINY + ["--run-dir", str(run), "--resume", "--steps", "5"])
    train_main(["--resume-from", str(exported), "--run-dir", str(went_on), "--steps", "5"] + MACHINE)
    assert [r["step"] for r in read_log(run)] == [r["step"] for r in read_log(went_on)] == [5]  # went on from step 4

    for switches, named in ((dict(nce_weight=1.0), "--nce-weight 1"), (dict(anime_framing="photos"), "--anime-framing photos"),
                            (dict(skip_resolutions=[8, 16]), "--skip-resolutions 8 16")):
        recorded(**switches)
        for flags in (["--run-dir", str(run), "--resume", "--steps", "6"], ["--run-dir", str(run), "--export", str(tmp_path / "none")],
                      ["--resume-from", str(exported), "--run-dir", str(tmp_path / "refused"), "--steps", "6"]):
            with pytest.raises(SystemExit, match=f"recorded with {named}: .*commit 6cc29a0 still trains them"):
                train_main(flags + MACHINE)
    # evaluated, a framed run's batch-norm statistics would be measured on portraits it never saw
    recorded({"training_data": {**payload["training_data"], "anime_framing": "photos"}})
    with pytest.raises(SystemExit, match="recorded with --anime-framing photos"):
        load_generator(argparse.Namespace(run=str(run), weights=None, norm_batches=3, threads=1))
    assert not (tmp_path / "none").exists() and not (tmp_path / "refused" / "checkpoint.pt").exists()


def test_the_removed_vgg16_encoder_recorded_is_refused_and_a_run_recorded_without_one_goes_on(trained, tmp_path):
    # While the frozen VGG16 encoder was an option, a run begun without --init-from recorded its encoder as None (its
    # own); such runs go on. A run recorded with the VGG16 encoder stops, naming the commit that still builds it.
    run, exported, went_on, _, recorded = recording_copies(trained, tmp_path)
    recorded(encoder=None)
    train_main(TINY + ["--run-dir", str(run), "--resume", "--steps", "5"])
    train_main(["--resume-from", str(exported), "--run-dir", str(went_on), "--steps", "5"] + MACHINE)
    assert [r["step"] for r in read_log(run)] == [r["step"] for r in read_log(went_on)] == [5]  # went on from step 4

    recorded(encoder="vgg16")
    for flags in (["--run-dir", str(run), "--resume", "--steps", "6"], ["--run-dir", str(run), "--export", str(tmp_path / "none")],
                  ["--resume-from", str(exported), "--run-dir", str(tmp_path / "refused"), "--steps", "6"]):
        with pytest.raises(SystemExit, match=f"encoder='vgg16' .*commit {LAST_WITH_VGG_ENCODER} still builds"):
            train_main(flags + MACHINE)
    assert not (tmp_path / "none").exists() and not (tmp_path / "refused" / "checkpoint.pt").exists()


def test_an_export_carries_how_the_run_began(trained, tmp_path):
    run, exported, still = tmp_path / "run", tmp_path / "export", tmp_path / "still"
    train_main(TINY + ["--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--run-dir", str(run), "--steps", "2",
                       "--init-from", str(trained / "export"), "--freeze-norm-statistics"])
    train_main(["--run-dir", str(run), "--export", str(exported)] + NORM_BATCHES)
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    train_main(["--resume-from", str(exported), "--run-dir", str(still), "--steps", "3", "--lr", "0"] + MACHINE)
    restored = torch.load(still / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert restored["step"] == 3
    # a fine-tune (no EMA warm-up) with frozen statistics stays one, its statistics exactly as they were
    assert restored["init_from"] == str(trained / "export") and restored["frozen_statistics"]
    statistics = [name for name in checkpoint["ema"] if name.endswith(("running_mean", "running_var"))]
    assert all(torch.equal(restored[key][name], checkpoint[key][name]) for key in ("generator", "ema") for name in statistics)


def test_cli_translates_folders_and_reports_bad_files(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARTOON_WEIGHTS_TWINGAN", str(trained / "export"))
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    get_model.cache_clear()
    (tmp_path / "in").mkdir()
    Image.new("RGB", (60, 40), "tan").save(tmp_path / "in" / "plain.png")
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    try:
        for reverse in ([], ["--reverse"]):
            out = tmp_path / f"out{len(reverse)}"
            assert cartoon_main(["anime", str(tmp_path / "in"), "-o", str(out), "--mode", "whole"] + reverse) == 0
            assert Image.open(out / "plain.png").size == (60, 40)
            assert not (out / "broken.png").exists()
        assert "1 of 2 images translated" in capsys.readouterr().out
        code = cartoon_main(["lookalike", str(tmp_path / "in" / "plain.png"), "--gallery", str(trained / "anime"), "-k", "2", "--whole"])
        listing = capsys.readouterr().out.splitlines()
        assert code == 0 and listing[0] == "other:"  # a folder without anime/ or human/ is one group
        assert len(listing) == 3 and all(line.startswith("  ") for line in listing[1:])
        with pytest.raises(SystemExit, match="does not exist"):
            cartoon_main(["lookalike", str(tmp_path / "in" / "plain.png"), "--gallery", str(tmp_path / "nowhere")])
    finally:
        get_model.cache_clear()
