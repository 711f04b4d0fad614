"""TwinGAN's training script on two tiny folders: steps, resume, export; then the CLI on the export."""

import argparse
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon import data
from cartoon.__main__ import main as cartoon_main
from cartoon.augment import diff_augment
from cartoon.training import linear_decay
from cartoon.twingan import get_model
from cartoon.twingan.checkpoint import estimate_norm_statistics
from cartoon.twingan.data import training_batches
from cartoon.twingan.held_out import load_generator
from cartoon.twingan.losses import critic_loss, translate_both_ways
from cartoon.twingan.model import ANIME, Discriminator, TwinGAN
from cartoon.twingan.train import main as train_main
from cartoon.vgg import VGG16Features

TINY = ["--resolution", "32", "--width", "8", "--max-width", "32", "--batch-size", "2",
        "--workers", "0", "--threads", "1", "--log-every", "1", "--sample-every", "2", "--save-every", "2",
        "--precision", "bf16", "--channels-last"]
# what a --resume-from names besides the export: the arguments that belong to a machine are not carried
MACHINE = ["--workers", "0", "--threads", "1"]

NORM_BATCHES = ["--norm-batches", "3", "--batch-size", "2", "--threads", "1"]


def write_faces(folder, count, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((40, 40)).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("twingan")
    write_faces(root / "photos", 4, 0)
    write_faces(root / "anime", 4, 1)
    run = root / "run"
    folders = ["--photos", str(root / "photos"), "--anime", str(root / "anime")]
    common = TINY + ["--run-dir", str(run)]
    train_main(common + folders + ["--steps", "2"])
    with pytest.MonkeyPatch.context() as patch:
        # the default folders do not exist: a resume that named no folders and went on anyway drew on its own
        for name in ("SELFIE_PHOTOS", "UTKFACE", "SELFIE_ANIME"):
            patch.setattr(data, name, root / "absent")
        train_main(common + ["--steps", "4", "--resume", "--content-weight", "1", "--cycle-content-weight", "1", "--vgg-size", "16",
                             "--lr-decay-from", "2"])
    train_main(["--run-dir", str(run), "--export", str(root / "export")] + NORM_BATCHES + folders)
    yield root
    torch.set_num_threads(threads)


def test_training_logs_samples_and_resumes(trained):
    records = [json.loads(line) for line in (trained / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # the resumed run went on from step 2
    # constant, then halfway down from step 2 to 0 at step 4: step 4's update used half the rate
    assert [r["lr"] for r in records] == [2e-4, 2e-4, 2e-4, 1e-4]
    # every loss finite under bfloat16 autocast, the models trained in channels-last order
    assert all(np.isfinite(v) for r in records for k, v in r.items() if k.startswith("loss_"))
    payload = torch.load(trained / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["args"]["precision"] == "bf16" and payload["args"]["channels_last"]
    assert all(payload[key][name].is_contiguous(memory_format=torch.channels_last) and not payload[key][name].is_contiguous()
               for key, name in (("generator", "encoder.32.conv1.weight"), ("ema", "encoder.32.conv1.weight"), ("critics", "0.features.0.weight_orig")))
    # the content terms are off by default and on after the resume that asked for them
    assert [r["loss_content"] > 0 for r in records] == [False, False, True, True]
    assert [r["loss_cycle_content"] > 0 for r in records] == [False, False, True, True]
    assert sorted(p.name for p in (trained / "run" / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]


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
    assert recorded == {"photos": [str(trained / "photos")], "anime": [str(trained / "anime")], "batch_size": 2, "anime_framing": "raw"}

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
    flags = argparse.Namespace(photos=[str(tmp_path / "photos")], anime=[str(tmp_path / "anime")], batch_size=8, seed=0,
                               anime_framing="raw")
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


def test_a_removed_term_recorded_on_is_refused_and_recorded_off_is_ignored(trained, tmp_path):
    # The feature critics and likeness terms lost and were removed. Every run recorded their weights, the current
    # line's at 0 (off), and those go on; a run that trained with one stops with a message instead of dropping it.
    run, exported, went_on = tmp_path / "run", tmp_path / "export", tmp_path / "went-on"
    run.mkdir()
    shutil.copytree(trained / "export", exported)
    payload = torch.load(trained / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    record = json.loads((exported / "training.json").read_text())

    def recorded(**weights):
        torch.save({**payload, "args": {**payload["args"], **weights}}, run / "checkpoint.pt")
        (exported / "training.json").write_text(json.dumps({**record, "args": {**record["args"], **weights}}))

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


@pytest.mark.parametrize("content, cycle_content, passes", [("1", "0", 2), ("0", "1", 2), ("1", "1", 3)])
def test_the_content_terms_share_one_vgg_pass_over_the_photos(trained, monkeypatch, content, cycle_content, passes):
    batches, whole_network = [], VGG16Features.forward

    def counted_forward(self, images):
        batches.append(len(images))
        return whole_network(self, images)

    monkeypatch.setattr(VGG16Features, "forward", counted_forward)
    train_main(TINY + ["--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--vgg-size", "16",
                       "--run-dir", str(trained / f"content-{content}-{cycle_content}"), "--steps", "1",
                       "--content-weight", content, "--cycle-content-weight", cycle_content])
    # a batch of 2 photos, then each term's images held to them: the anime translations, the round trips
    assert batches == [2] * passes


def test_fine_tuning_warms_new_critics_up_on_the_saved_generator_then_trains_it(trained):
    tuned_run, exported = trained / "tuned", trained / "export"
    # size flags unlike the saved model's: its config decides the generator's size
    flags = TINY[:2] + ["--width", "4", "--max-width", "16"] + TINY[6:] + [
        "--critic-width", "4", "--critic-max-width", "8", "--run-dir", str(tuned_run),
        "--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--critic-warmup", "2",
        "--lr", "1e-4", "--critic-lr", "5e-4"]
    train_main(flags + ["--init-from", str(exported), "--steps", "2"])
    saved_model = TwinGAN.from_pretrained(str(exported))
    saved = saved_model.state_dict()
    warmed = torch.load(tuned_run / "checkpoint.pt", map_location="cpu", weights_only=True)
    config = json.loads((exported / "config.json").read_text())
    assert warmed["config"] == {key: config.get(key) for key in ("resolution", "width", "max_width", "skip_resolutions", "colour_classes")}
    assert warmed["init_from"] == str(exported)
    # two critic steps; the average untouched, and the generator's weights (its batch-norm running
    # statistics follow the batches, as in any forward pass in training mode)
    assert all(torch.equal(warmed["ema"][name], saved[name]) for name in saved)
    assert all(torch.equal(warmed["generator"][name], saved[name]) for name, _ in saved_model.named_parameters())
    assert not warmed["opt_g"]["state"]
    assert (warmed["opt_g"]["param_groups"][0]["lr"], warmed["opt_d"]["param_groups"][0]["lr"]) == (1e-4, 5e-4)
    assert [int(s["step"]) for s in warmed["opt_d"]["state"].values()] == [2] * len(warmed["opt_d"]["state"])
    assert warmed["critics"]["0.score.weight_orig"].shape == (1, 8 * 16)  # the critics' own widths

    train_main(flags + ["--resume", "--steps", "3"])  # no --init-from: the run remembers it
    tuned = torch.load(tuned_run / "checkpoint.pt", map_location="cpu", weights_only=True)
    name = "to_rgb.weight"
    assert not torch.equal(tuned["generator"][name], saved[name])
    # the average took the full decay's share of the step (0.001), not the 0.75 that the warm-up
    # meant for a random init would give at step 2 (up to float32 rounding of weights near 1)
    moved = (tuned["ema"][name] - saved[name]).double()
    stepped = (tuned["generator"][name] - saved[name]).double()
    assert moved.norm() / stepped.norm() == pytest.approx(0.001, rel=0.1)


def test_fine_tuning_with_frozen_statistics_trains_what_inference_makes_and_exports_it(trained):
    tuned_run, exported, again = trained / "frozen", trained / "export", trained / "frozen-export"
    folders = ["--photos", str(trained / "photos"), "--anime", str(trained / "anime")]
    flags = TINY + folders + ["--run-dir", str(tuned_run)]
    train_main(flags + ["--init-from", str(exported), "--freeze-norm-statistics", "--steps", "2"])
    train_main(flags + ["--resume", "--steps", "3"])  # no flag: the run remembers it
    saved = TwinGAN.from_pretrained(str(exported)).state_dict()
    payload = torch.load(tuned_run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["frozen_statistics"] and payload["step"] == 3
    statistics = [name for name in saved if name.endswith(("running_mean", "running_var"))]
    assert all(torch.equal(payload[key][name], saved[name]) for key in ("generator", "ema") for name in statistics)
    assert not torch.equal(payload["generator"]["to_rgb.weight"], saved["to_rgb.weight"])
    # export writes the statistics the run trained with, not a fresh estimate
    train_main(["--run-dir", str(tuned_run), "--export", str(again)] + NORM_BATCHES + folders)
    written = TwinGAN.from_pretrained(str(again)).state_dict()
    assert all(torch.equal(tensor, payload["ema"][name]) for name, tensor in written.items())


def test_freezing_statistics_on_a_resume_keeps_the_critics_and_starts_from_what_export_ships(trained):
    fork = trained / "frozen-fork"
    fork.mkdir()
    shutil.copy(trained / "run" / "checkpoint.pt", fork)
    before = torch.load(fork / "checkpoint.pt", map_location="cpu", weights_only=True)
    train_main(TINY + ["--run-dir", str(fork), "--resume", "--freeze-norm-statistics", "--norm-batches", "3", "--steps", "5"])
    payload = torch.load(fork / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["frozen_statistics"] and payload["step"] == 5
    # the critics went on, their optimiser's count with them, rather than starting afresh
    assert all(int(state["step"]) == 5 for state in payload["opt_d"]["state"].values())
    # both models hold the statistics the fixture's export estimated for the step-4 average (over the
    # run's own folders, its batch size, as many batches), unchanged by the step trained after
    exported = TwinGAN.from_pretrained(str(trained / "export")).state_dict()
    statistics = [name for name in exported if name.endswith(("running_mean", "running_var"))]
    assert all(torch.equal(payload[key][name], exported[name]) for key in ("generator", "ema") for name in statistics)
    assert not torch.equal(payload["generator"]["to_rgb.weight"], before["generator"]["to_rgb.weight"])
    # a frozen run resumed with the flag again keeps its statistics: no second estimate for the moved average
    train_main(TINY + ["--run-dir", str(fork), "--resume", "--freeze-norm-statistics", "--norm-batches", "3", "--steps", "6"])
    later = torch.load(fork / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert later["step"] == 6 and all(torch.equal(later["ema"][name], exported[name]) for name in statistics)


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


def test_diff_augment_changes_each_image_keeps_shape_and_gradient():
    torch.manual_seed(0)
    images = (torch.rand(3, 3, 32, 32) * 2 - 1).requires_grad_(True)
    assert diff_augment(images, "none") is images
    for policy in ("color", "translation", "cutout"):
        changed = (diff_augment(images, policy) - images).abs().flatten(1).amax(1)
        assert (changed > 0.01).all(), policy  # every image in the batch is augmented
    cut = diff_augment(images, "cutout")
    zeroed = (cut == 0).all(1).flatten(1).float().mean(1)
    assert ((zeroed > 0.05) & (zeroed <= 0.25)).all()  # a square of at most half the side, clipped at the edges
    augmented = diff_augment(images, "color,translation,cutout")
    assert augmented.shape == images.shape
    augmented.sum().backward()
    assert images.grad.abs().sum() > 0


def test_learning_rate_decay_is_constant_then_linear_to_zero():
    assert [linear_decay(step, 6, 10) for step in range(4, 12)] == [1, 1, 1, 0.75, 0.5, 0.25, 0, 0]
    assert linear_decay(10**6, None, 10) == 1  # no start: the rate never decays


def test_a_critic_learns_to_score_real_images_above_generated_ones():
    torch.manual_seed(0)
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    fake = real.flip(0)[:, [2, 0, 1]] * 0.7 + 0.3  # generated stand-ins: other faces, shifted in colour
    critic = Discriminator(32, 8, 32)
    optimiser = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.99))
    losses = []
    for _ in range(30):
        loss = critic_loss(critic, real, fake, lambda x: x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        assert critic(real).min() > critic(fake).max()


def test_the_landmark_term_measures_translations_of_faces_only_and_needs_the_detectors_resolution(tmp_path):
    faces, noise = tmp_path / "faces", tmp_path / "noise"
    faces.mkdir()
    held_out = data.split(data.UTKFACE)[1][:2]
    assert len(held_out) == 2, "the test needs the project's data (see ../shared/data/README.md)"
    for path in held_out:
        shutil.copy(path, faces)
    write_faces(noise, 2, 0)
    write_faces(tmp_path / "anime", 2, 1)
    logged = {}
    for photos in (faces, noise):
        run = tmp_path / f"run-{photos.name}"
        train_main(TINY + ["--resolution", "64", "--photos", str(photos), "--anime", str(tmp_path / "anime"),
                           "--run-dir", str(run), "--steps", "1", "--landmark-weight", "1"])
        logged[photos.name] = json.loads((run / "log.jsonl").read_text().splitlines()[-1])["loss_landmark"]
    # an untrained translation misplaces the faces' landmarks; photos without a face give the term nothing to hold
    assert logged["faces"] > 0 and logged["noise"] == 0
    with pytest.raises(SystemExit, match="resolution of at least 64"):
        train_main(TINY + ["--photos", str(faces), "--anime", str(tmp_path / "anime"), "--run-dir", str(tmp_path / "small"),
                           "--steps", "1", "--landmark-weight", "1"])


def test_a_run_with_fewer_skips_trains_exports_and_resumes_as_that_design(trained, tmp_path):
    run, exported, went_on = (tmp_path / name for name in ("run", "export", "went-on"))
    folders = ["--photos", str(trained / "photos"), "--anime", str(trained / "anime")]
    train_main(TINY + folders + ["--run-dir", str(run), "--steps", "2", "--skip-resolutions", "8"])
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert checkpoint["config"]["skip_resolutions"] == [8]
    model = TwinGAN(**checkpoint["config"])
    # only the 8² block joins encoder features; the finer blocks draw from the block below alone
    assert model.generator["8"].conv1.in_channels > model.start.out_channels
    assert model.generator["16"].conv1.in_channels == model.generator["8"].conv1.out_channels
    assert model.generator["32"].conv1.in_channels == model.generator["16"].conv1.out_channels
    _, skips = model.encode(torch.zeros(1, 3, 32, 32))
    assert list(skips) == [8]

    train_main(["--run-dir", str(run), "--export", str(exported)] + NORM_BATCHES)
    assert TwinGAN.from_pretrained(str(exported)).skip_resolutions == (8,)
    train_main(["--resume-from", str(exported), "--run-dir", str(went_on), "--steps", "3"] + MACHINE)
    train_main(["--run-dir", str(went_on), "--resume", "--steps", "4"] + MACHINE)  # the checkpoint, not the flags' default, says which skips
    assert torch.load(went_on / "checkpoint.pt", map_location="cpu", weights_only=True)["config"]["skip_resolutions"] == [8]


def test_a_saved_model_fine_tunes_as_the_coarser_skip_design(trained, tmp_path):
    run, exported = tmp_path / "coarser", trained / "export"
    saved = TwinGAN.from_pretrained(str(exported))
    assert 16 in saved.skip_resolutions
    train_main(TINY + ["--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--run-dir", str(run),
                       "--init-from", str(exported), "--skip-resolutions", "8", "--critic-warmup", "1", "--steps", "1"])
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert checkpoint["config"]["skip_resolutions"] == [8]
    sizes = ("resolution", "width", "max_width")  # the saved model's, whatever TINY's flags say
    saved_config = json.loads((exported / "config.json").read_text())
    assert {key: checkpoint["config"][key] for key in sizes} == {key: saved_config[key] for key in sizes}
    # the encoder and the blocks that kept their inputs start as saved
    assert torch.equal(checkpoint["ema"]["encoder.16.conv1.weight"], saved.state_dict()["encoder.16.conv1.weight"])
    assert torch.equal(checkpoint["ema"]["generator.8.conv1.weight"], saved.state_dict()["generator.8.conv1.weight"])
    kept = checkpoint["ema"]["generator.16.conv1.weight"]
    assert torch.equal(kept, saved.state_dict()["generator.16.conv1.weight"][:, :kept.shape[1]])
