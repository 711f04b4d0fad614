"""White-box training: short runs that learn, resume, export and resume elsewhere."""

import json
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon.training import Run
from cartoon.training_state import read_training_state
from cartoon.whitebox import pretrain, representations as rep, train
from cartoon.whitebox.model import Generator


def test_flat_target_default_never_inks_and_the_ink_target_trains_deterministically(tmp_path, monkeypatch):
    photos = make_images(tmp_path / "photos", 4, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 4, seed=1)
    args = ["--photos", str(photos), "--cartoons", str(cartoons), "--segments", "10", "--w-flat", "1",
            "--log-every", "1", "--steps", "3", "--sample-every", "100", "--save-every", "100"] + COMMON
    ink = rep.line_ink

    def refused(*_):
        raise AssertionError("the default flat target built the ink target")

    monkeypatch.setattr(rep, "line_ink", refused)
    train.main(args + ["--run-dir", str(tmp_path / "default")])
    assert all(record["flat"] > 0 for record in read_log(tmp_path / "default"))
    monkeypatch.setattr(rep, "line_ink", ink)
    runs = [tmp_path / "ink1", tmp_path / "ink2"]
    for run in runs:
        train.main(args + ["--run-dir", str(run), "--flat-target", "superpixel-ink"])
    first, second = ([{k: v for k, v in r.items() if k != "seconds"} for r in read_log(run)] for run in runs)
    assert first == second
    assert all(np.isfinite(record["flat"]) and record["flat"] > 0 for record in first)

def make_images(folder, count, seed):
    """Synthetic photos: smooth colour gradients with a bright disc (no dataset needed)."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:40, 0:40] / 40.0
    for i in range(count):
        colour = rng.uniform(0, 1, 3)
        image = (colour * (0.4 + 0.6 * x[..., None]) + 0.2 * y[..., None]).clip(0, 1)
        cy, cx = rng.uniform(10, 30, 2)
        image[(np.mgrid[0:40, 0:40][0] - cy) ** 2 + (np.mgrid[0:40, 0:40][1] - cx) ** 2 < 60] = rng.uniform(0.6, 1, 3)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def read_log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


COMMON = ["--size", "32", "--batch-size", "2", "--workers", "0", "--threads", "1", "--channels", "4", "--blocks", "1"]


def test_colour_and_luma_terms_join_the_generator_loss(tmp_path):
    photos = make_images(tmp_path / "photos", 4, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 4, seed=1)
    run = tmp_path / "train"
    train.main(["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
                "--log-every", "2", "--steps", "4", "--sample-every", "100", "--save-every", "100", "--w-colour", "1",
                "--w-luma", "1"] + COMMON)
    log = read_log(run)
    assert [record["step"] for record in log] == [2, 4]
    assert all(record["colour"] > 0 and record["luma"] > 0 for record in log)


def test_logged_steps_carry_the_landmark_term_it_skips_in_between(tmp_path):
    photos = make_images(tmp_path / "photos", 4, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 4, seed=1)
    run = tmp_path / "train"
    # the landmark detector needs 64² at least; the later --size wins over COMMON's
    train.main(COMMON + ["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
                         "--size", "64", "--log-every", "2", "--steps", "4", "--sample-every", "100", "--save-every", "100",
                         "--w-landmark", "1", "--landmark-every", "2"])
    assert [record["step"] for record in read_log(run)] == [2, 4]
    assert all(record["landmark"] >= 0 for record in read_log(run))


def test_the_skin_luma_term_brings_the_detector_alone_and_joins_the_generator_loss(tmp_path, monkeypatch):
    from cartoon.faces.loss import PhotoFaces

    photos = make_images(tmp_path / "photos", 4, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 4, seed=1)
    run = tmp_path / "train"
    located = []
    face = torch.tensor([[20.0, 24], [44, 24], [32, 34], [22, 46], [42, 46]])  # a face in every 64² crop

    def locate(self, photo):
        located.append(len(photo))
        scale = (self.detect_side or 64) / 64
        return PhotoFaces(torch.zeros(len(photo), 1, dtype=torch.long), torch.ones(len(photo), 1),
                          (face * scale).expand(len(photo), 1, 5, 2), scale)

    monkeypatch.setattr("cartoon.faces.loss.LandmarkLoss.locate", locate)
    train.main(COMMON + ["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
                         "--size", "64", "--log-every", "2", "--steps", "4", "--sample-every", "100", "--save-every", "100",
                         "--w-skin-luma", "1"])
    log = read_log(run)
    assert located == [2] * 4  # the batch's faces are found once a step
    assert all(record["skin_luma"] > 0 and "landmark" not in record for record in log)


def test_a_resume_takes_the_runs_own_flags_and_the_ones_given_override_them(tmp_path):
    photos = make_images(tmp_path / "photos", 4, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 4, seed=1)
    run = tmp_path / "train"
    train.main(COMMON + ["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
                         "--log-every", "2", "--steps", "2", "--sample-every", "100", "--save-every", "2", "--w-colour", "3"])
    # none of the run's flags (a 4-channel generator, its data, the colour term) is given again
    train.main(["--resume", "--run-dir", str(run), "--steps", "4", "--workers", "0", "--threads", "1"])
    log = read_log(run)
    assert [record["step"] for record in log] == [2, 4] and all(record["colour"] > 0 for record in log)
    resumed = train.parse_args(["--resume", "--run-dir", str(run), "--w-colour", "5"])
    assert (resumed.channels, resumed.segments, resumed.w_colour, resumed.photos) == (4, 10, 5.0, [str(photos)])
    with pytest.raises(SystemExit):  # a checkpoint and an export at once: which to continue is not guessed
        train.parse_args(["--resume", "--run-dir", str(run), "--resume-from", str(run)])


def test_pretraining_learns_to_reconstruct_and_resumes(tmp_path):
    photos = make_images(tmp_path / "photos", 6, seed=0)
    run = tmp_path / "pretrain"
    args = ["--photos", str(photos), "--run-dir", str(run), "--lr", "3e-3", "--log-every", "5", "--save-every", "20"]
    pretrain.main(args + COMMON + ["--steps", "40", "--sample-every", "40"])
    log = read_log(run)
    assert log[-1]["reconstruction"] < 0.5 * log[0]["reconstruction"]
    assert (run / "samples" / "step_000040.png").is_file()

    pretrain.main(args + COMMON + ["--steps", "50", "--sample-every", "50", "--resume"])
    assert [r["step"] for r in read_log(run)][-2:] == [45, 50]  # continued, not restarted


def test_full_training_lowers_the_generator_loss_and_exports(tmp_path):
    photos = make_images(tmp_path / "photos", 6, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 6, seed=1)
    run = tmp_path / "train"
    args = ["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
            "--lr", "2e-3", "--log-every", "5", "--steps", "20", "--sample-every", "20", "--save-every", "20"]
    train.main(args + COMMON)
    log = read_log(run)
    assert log[-1]["content"] < log[0]["content"]
    assert log[-1]["total"] < log[0]["total"]
    assert (run / "samples" / "step_000020.png").is_file()

    train.main(args + COMMON + ["--export", str(tmp_path / "export"), "--export-radius", "3", "--export-eps", "0.05"])
    exported = Generator.from_pretrained(str(tmp_path / "export"))
    assert exported(torch.zeros(1, 3, 20, 20)).shape == (1, 3, 20, 20)
    assert (exported.radius, exported.eps) == (3, 0.05)  # the inference filter, not the training one
    trained = Generator(channels=4, blocks=1, radius=3, eps=0.05)
    Run(run, main=False).load_checkpoint("cpu", ema=trained)
    photo = torch.rand(1, 3, 20, 20) * 2 - 1
    assert torch.equal(exported(photo), trained(photo))

    # exported without naming a filter: the run's own; a run that goes on from an export has that export's
    train.main(args + COMMON + ["--export", str(tmp_path / "unnamed")])
    unnamed = Generator.from_pretrained(str(tmp_path / "unnamed"))
    assert (unnamed.radius, unnamed.eps) == train.EXPORT_FILTER
    went_on = tmp_path / "went-on"
    train.main(["--resume-from", str(tmp_path / "export"), "--run-dir", str(went_on), "--steps", "21", "--save-every", "21"] + COMMON)
    train.main(["--run-dir", str(went_on), "--export", str(tmp_path / "again")] + COMMON)
    again = Generator.from_pretrained(str(tmp_path / "again"))
    assert (again.radius, again.eps) == (3, 0.05)


@pytest.mark.usefixtures("one_thread")
def test_bf16_channels_last_steps_are_finite_and_learn_as_float32_does():
    torch.manual_seed(0)
    photo, cartoon = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    learnt = {}
    for precision in ("bf16", "fp32"):
        torch.manual_seed(1)
        args = train.parse_args(COMMON + ["--segments", "10", "--lr", "2e-3", "--precision", precision, "--channels-last"])
        trainer = train.Trainer(args, "cpu")
        assert trainer.generator.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
        steps = [trainer.step(photo, cartoon, step) for step in range(6)]
        assert all(torch.isfinite(v).all() for losses in steps for v in losses.values())
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            output = trainer.generator(photo)
        assert torch.isfinite(output).all()
        # the adversarial terms swing from step to step; the terms toward fixed targets fall on a fixed batch
        learnt[precision] = np.array([[float(losses[k]) for k in ("content", "structure")] for losses in steps])
        assert (learnt[precision][-1] < learnt[precision][0]).all()
    # same seed, same batch: bf16 rounding moves these losses a little (so it ran), not the course of training
    assert not np.array_equal(learnt["bf16"], learnt["fp32"])
    assert np.allclose(learnt["bf16"], learnt["fp32"], rtol=0.02)


def assert_bf16_close(restored: dict, original: dict):
    assert restored.keys() == original.keys()
    for key, value in original.items():
        torch.testing.assert_close(restored[key], value, rtol=1e-2, atol=1e-6, msg=key)


def assert_adam_moments_restored(restored: dict, original: dict):
    """The step and second moment as saved; the first moment, at these trainers' beta1 of 0.5, starts afresh."""
    assert torch.count_nonzero(restored["exp_avg"]) == 0
    assert_bf16_close({k: v for k, v in restored.items() if k != "exp_avg"}, {k: v for k, v in original.items() if k != "exp_avg"})


def distance(state: dict, other: dict) -> float:
    return sum(float((state[key].float() - value.float()).norm()) for key, value in other.items())


# A resumed run is given another seed: any model it failed to restore would be a new one, far from the export.
RESUME_SEED = 1


def test_full_training_exports_its_state_and_resumes_from_it_elsewhere(tmp_path):
    photos = make_images(tmp_path / "photos", 6, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 6, seed=1)
    run, export, resumed = tmp_path / "train", tmp_path / "export", tmp_path / "resumed"
    train.main(COMMON + ["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
                         "--lr", "2e-3", "--d-lr", "1e-3", "--steps", "4", "--log-every", "1", "--save-every", "4",
                         "--sample-every", "4"])
    export.mkdir()
    (export / "README.md").write_text("model card")
    # the export command names the run and nothing else: the run's own arguments rebuild its models
    train.main(["--run-dir", str(run), "--export", str(export)])
    assert (export / "README.md").read_text() == "model card"
    saved = Run(run, main=False).read_checkpoint()

    args = train.parse_args(["--resume-from", str(export), "--run-dir", str(resumed), "--steps", "5", "--threads", "1"])
    assert (args.lr, args.d_lr, args.channels, args.steps, args.run) == (2e-3, 1e-3, 4, 5, str(resumed))
    trainer = train.Trainer(args, "cpu")
    before = trainer.d_surface.state_dict()
    assert not all(torch.allclose(before[k], saved["d_surface"][k], rtol=1e-2) for k in before)
    assert Run.restore(read_training_state(export), **trainer.state()) == 4
    for name in ("generator", "d_surface", "d_texture"):
        assert_bf16_close(trainer.models[name].state_dict(), saved[name])
    for key, value in saved["ema"].items():
        assert torch.equal(trainer.ema.state_dict()[key], value)  # the shipped EMA keeps full precision
    omitted = json.loads((export / "training.json").read_text())["moments_omitted"]
    for name in ("opt_g", "opt_d"):
        state = trainer.models[name].state_dict()
        assert [g["lr"] for g in state["param_groups"]] == [g["lr"] for g in saved[name]["param_groups"]]
        if name in omitted:  # over the export's size budget: Adam starts its moments afresh
            assert state["state"] == {}
        else:
            for index, moments in saved[name]["state"].items():
                assert_adam_moments_restored(state["state"][index], moments)

    train.main(["--resume-from", str(export), "--run-dir", str(resumed), "--steps", "5", "--seed", str(RESUME_SEED),
                "--threads", "1", "--workers", "0"])
    after = Run(resumed, main=False).read_checkpoint()
    assert after["step"] == 5 and [r["step"] for r in read_log(resumed)] == [5]
    torch.manual_seed(RESUME_SEED)
    unrestored = train.build_models(args, "cpu")
    for name in ("generator", "d_surface", "d_texture"):  # one step on from the exported models
        assert distance(after[name], saved[name]) < 0.1 * distance(unrestored[name].state_dict(), saved[name]), name
    # one update of the exported average toward the new generator, not an average started over
    assert not torch.allclose(saved["ema"]["head.weight"], after["generator"]["head.weight"], atol=1e-4)
    for key, value in saved["ema"].items():
        torch.testing.assert_close(after["ema"][key], value.lerp(after["generator"][key], 1 - args.ema), rtol=0, atol=1e-7)


def test_pretraining_exports_a_channels_last_run_and_resumes_from_it_elsewhere(tmp_path):
    photos = make_images(tmp_path / "photos", 6, seed=0)
    run, export, resumed = tmp_path / "pretrain", tmp_path / "export", tmp_path / "resumed"
    pretrain.main(COMMON + ["--photos", str(photos), "--run-dir", str(run), "--lr", "3e-3", "--steps", "4",
                            "--log-every", "1", "--save-every", "4", "--sample-every", "4", "--channels-last"])
    saved = Run(run, main=False).read_checkpoint()
    assert saved["generator"]["stem.0.weight"].is_contiguous(memory_format=torch.channels_last)
    pretrain.main(["--run-dir", str(run), "--export", str(export)])

    exported = Generator.from_pretrained(str(export))
    for key, value in saved["generator"].items():
        assert torch.equal(exported.state_dict()[key], value)
    args = pretrain.parse_args(["--resume-from", str(export), "--run-dir", str(resumed), "--steps", "5"])
    assert (args.lr, args.channels, args.blocks) == (3e-3, 4, 1)
    models = pretrain.build_models(args, "cpu")
    assert Run.restore(read_training_state(export, ema_key="generator"), **models) == 4
    for key, value in saved["generator"].items():  # no EMA: model.safetensors is the generator, in full precision
        assert torch.equal(models["generator"].state_dict()[key], value)
    state = models["optimizer"].state_dict()
    assert state["param_groups"][0]["lr"] == saved["optimizer"]["param_groups"][0]["lr"]
    assert state["state"].keys() == saved["optimizer"]["state"].keys()  # the moments fit the budget
    for index, moments in saved["optimizer"]["state"].items():
        assert_adam_moments_restored(state["state"][index], moments)

    pretrain.main(["--resume-from", str(export), "--run-dir", str(resumed), "--steps", "5", "--seed", str(RESUME_SEED),
                   "--threads", "1", "--workers", "0"])
    after = Run(resumed, main=False).read_checkpoint()
    assert after["step"] == 5 and [r["step"] for r in read_log(resumed)] == [5]
    torch.manual_seed(RESUME_SEED)
    unrestored = pretrain.build_models(args, "cpu")["generator"].state_dict()
    assert distance(after["generator"], saved["generator"]) < 0.1 * distance(unrestored, saved["generator"])


def test_a_run_without_the_feature_critic_resumes_into_one_with_it(tmp_path):
    photos = make_images(tmp_path / "photos", 4, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 4, seed=1)
    run = tmp_path / "train"
    args = COMMON + ["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
                     "--log-every", "1", "--sample-every", "100", "--save-every", "2"]
    train.main(args + ["--steps", "2"])
    plain = Run(run, main=False).read_checkpoint()
    assert "d_feature" not in plain and all("feature" not in record for record in read_log(run))

    train.main(args + ["--steps", "4", "--resume", "--w-feature", "1"])
    records = read_log(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(np.isfinite(r["feature"]) and r["d_feature"] > 0 for r in records[2:])
    resumed = Run(run, main=False).read_checkpoint()
    assert resumed["step"] == 4
    # the critic took its own optimiser's two steps, every head; the plain run's critics went on
    critic_steps = {int(moments["step"]) for moments in resumed["opt_f"]["state"].values()}
    assert critic_steps == {2} and len(resumed["opt_f"]["state"]) == len(
        [k for k in resumed["d_feature"] if k.endswith(("bias", "weight_orig"))])
    assert {int(m["step"]) for m in resumed["opt_d"]["state"].values()} == {4}


def test_the_face_score_weight_reaches_the_landmark_term_and_defaults_to_landmarks_alone():
    scored = train.Trainer(train.parse_args(["--w-landmark", "10", "--landmark-face-score", "0.5"] + COMMON), "cpu")
    plain = train.Trainer(train.parse_args(["--w-landmark", "10"] + COMMON), "cpu")
    assert scored.landmarks.confidence_weight == 0.5 and plain.landmarks.confidence_weight == 0.0


def test_a_killed_run_checkpoints_the_step_it_stopped_at_and_resumes_from_it(tmp_path, monkeypatch):
    photos = make_images(tmp_path / "photos", 6, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 6, seed=1)
    run = tmp_path / "train"
    args = COMMON + ["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
                     "--steps", "6", "--log-every", "5", "--save-every", "5", "--sample-every", "5"]
    step = train.Trainer.step

    def killed_during_the_third(self, *batch):
        if batch[-1] == 2:  # `kill` arrives while the third step trains
            signal.raise_signal(signal.SIGTERM)
        return step(self, *batch)

    monkeypatch.setattr(train.Trainer, "step", killed_during_the_third)
    with pytest.raises(SystemExit) as stopped:
        train.main(args)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert Run(run, main=False).read_checkpoint()["step"] == 3  # not 0: the periodic save was at 5
    assert [r["step"] for r in read_log(run)] == [3]

    monkeypatch.setattr(train.Trainer, "step", step)
    train.main(args + ["--resume"])
    assert Run(run, main=False).read_checkpoint()["step"] == 6
    assert [r["step"] for r in read_log(run)] == [3, 5]
