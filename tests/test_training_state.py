"""Exported training state: what --resume-from continues on a machine without the run folder."""

import argparse
import json

import pytest
import torch
from torch import nn

from cartoon.data import ANIME_TAGS
from cartoon.training import Run
from cartoon.training_state import ARGS_FILE, STATE_FILE, export_training_state, parse_resumable, read_training_state


def trained(betas=(0.5, 0.99)):
    """A model and a critic, each stepped by Adam a few times so the moments are not zero."""
    torch.manual_seed(0)
    models = {"generator": nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), "critic": nn.Conv2d(3, 4, 3)}
    optimisers = {f"opt_{k}": torch.optim.Adam(m.parameters(), lr=1e-3, betas=betas) for k, m in models.items()}
    for _ in range(3):
        for key, model in models.items():
            loss = model(torch.randn(2, 3, 8, 8)).pow(2).mean()
            optimisers[f"opt_{key}"].zero_grad()
            loss.backward()
            optimisers[f"opt_{key}"].step()
    return models, optimisers


def export(folder, models, optimisers, step=7, **args):
    """An export's model file (the EMA: here the generator itself) and its training state."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in models["generator"].state_dict().items()}, str(folder / "model.safetensors"))
    namespace = argparse.Namespace(lr=1e-3, run="runs/x", threads=2, **args)
    return export_training_state(folder, step, namespace, generator=models["generator"], critic=models["critic"], **optimisers)


def test_export_round_trip_restores_models_optimisers_and_step(tmp_path):
    models, optimisers = trained()
    record = export(tmp_path, models, optimisers)
    assert record["moments_omitted"] == [] and (tmp_path / STATE_FILE).is_file()

    torch.manual_seed(1)
    fresh = {"generator": nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), "critic": nn.Conv2d(3, 4, 3)}
    fresh_optimisers = {f"opt_{k}": torch.optim.Adam(m.parameters(), lr=5.0, betas=(0.5, 0.99)) for k, m in fresh.items()}
    ema = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    payload = read_training_state(tmp_path)
    assert Run.restore(payload, ema=ema, **fresh, **fresh_optimisers) == 7
    assert payload["args"] == {"lr": 1e-3}  # the run folder and thread count belong to a machine, not the training

    for key in models:  # bfloat16 keeps about three significant digits
        for old, new in zip(models[key].state_dict().values(), fresh[key].state_dict().values()):
            torch.testing.assert_close(new.float(), old.float(), rtol=1e-2, atol=1e-3)
    for old, new in zip(models["generator"].state_dict().values(), ema.state_dict().values()):
        assert torch.equal(old, new)  # the EMA ships at full precision
    for key, optimiser in optimisers.items():
        restored = fresh_optimisers[key]
        assert restored.param_groups[0]["lr"] == 5.0  # built from this run's flags; the saved rate does not override them
        for param, new_param in zip(optimiser.param_groups[0]["params"], restored.param_groups[0]["params"]):
            old_state, new_state = optimiser.state[param], restored.state[new_param]
            assert float(new_state["step"]) == float(old_state["step"]) == 3
            torch.testing.assert_close(new_state["exp_avg_sq"], old_state["exp_avg_sq"], rtol=1e-2, atol=1e-12)


@pytest.mark.parametrize("beta1, stored", [(0.0, False), (0.5, False), (0.9, True)])
def test_first_moments_are_stored_only_when_their_memory_is_long(tmp_path, beta1, stored):
    models, optimisers = trained(betas=(beta1, 0.99))
    export(tmp_path, models, optimisers)
    from safetensors.torch import load_file

    keys = load_file(str(tmp_path / STATE_FILE)).keys()
    assert any(k.endswith("exp_avg_sq") for k in keys)
    assert any(k.endswith("/exp_avg") for k in keys) == stored
    moments = read_training_state(tmp_path)["opt_generator"]["state"]
    assert all((torch.count_nonzero(m["exp_avg"]) > 0) == stored for m in moments.values())


def test_no_state_file_passes_the_file_limit(tmp_path, monkeypatch):
    import cartoon.training_state as training_state

    models, optimisers = trained(betas=(0.9, 0.99))
    without_moments = sum(v.numel() * 2 for m in models.values() for v in m.state_dict().values() if v.is_floating_point())
    monkeypatch.setattr(training_state, "FILE_LIMIT", without_moments + 600)  # room for some moments, not all
    record = export(tmp_path, models, optimisers)
    assert record["moments_omitted"] and record["state_bytes"] <= training_state.FILE_LIMIT


def test_moments_that_do_not_fit_the_budget_are_left_out(tmp_path, monkeypatch):
    import cartoon.training_state as training_state

    models, optimisers = trained(betas=(0.9, 0.99))  # both moments stored
    monkeypatch.setattr(training_state, "STATE_BUDGET", 1.0)  # room for the models' bf16 copies, not for moments
    record = export(tmp_path, models, optimisers)
    assert "opt_generator" in record["moments_omitted"]
    assert record["state_bytes"] <= record["model_bytes"]
    payload = read_training_state(tmp_path)
    assert payload["opt_generator"]["state"] == {}  # Adam starts its moments afresh
    optimiser = torch.optim.Adam(models["generator"].parameters())
    optimiser.load_state_dict(payload["opt_generator"])


def test_recorded_arguments_become_defaults_and_data_paths_travel(tmp_path):
    models, optimisers = trained()
    export(tmp_path, models, optimisers, data=str(ANIME_TAGS), steps=100)
    assert json.loads((tmp_path / ARGS_FILE).read_text())["args"]["data"] == "$CARTOON_DATA/anime_tags"

    parser = argparse.ArgumentParser()
    parser.add_argument("--resume-from")
    parser.add_argument("--run", default="runs/new")
    for name, default in (("--data", "elsewhere"), ("--steps", 10), ("--lr", 1.0)):
        parser.add_argument(name, default=default, type=type(default))
    args = parse_resumable(parser, ["--resume-from", str(tmp_path), "--steps", "200"])
    assert args.data == str(ANIME_TAGS) and args.lr == 1e-3  # recorded
    assert args.steps == 200 and args.run == "runs/new"  # given here, and never carried


def test_a_switch_the_run_was_started_with_can_be_turned_off_on_resume(tmp_path):
    from cartoon.whitebox.train import build_parser

    models, optimisers = trained()
    export(tmp_path, models, optimisers, landmark_own_anchors=True)
    # a fresh parser each time: parse_resumable sets the recorded arguments as its defaults
    assert parse_resumable(build_parser(), ["--resume-from", str(tmp_path)]).landmark_own_anchors
    assert not parse_resumable(build_parser(), ["--resume-from", str(tmp_path), "--no-landmark-own-anchors"]).landmark_own_anchors


@pytest.mark.parametrize("native", ["fp32", "bf16"])
def test_a_resumed_run_trains_in_its_new_machines_precision_unless_told(tmp_path, monkeypatch, native):
    from cartoon import training
    from cartoon.whitebox.train import build_parser

    models, optimisers = trained()
    other = "bf16" if native == "fp32" else "fp32"
    export(tmp_path, models, optimisers, precision=other)
    assert json.loads((tmp_path / ARGS_FILE).read_text())["args"]["precision"] == other  # the export says how it trained
    monkeypatch.setattr(training, "native_precision", lambda: native)  # the machine the run moves to
    assert parse_resumable(build_parser(), ["--resume-from", str(tmp_path)]).precision == native
    for asked in ("fp32", "bf16"):
        assert parse_resumable(build_parser(), ["--resume-from", str(tmp_path), "--precision", asked]).precision == asked


@pytest.mark.parametrize("recorded", [{"precision": "bf16", "render_precision": "bf16"}, {"precision": "bf16"}],
                         ids=["recorded", "from-before-the-flag"])
def test_an_avatar_run_draws_in_the_precision_it_started_in_wherever_it_resumes(tmp_path, monkeypatch, recorded):
    from cartoon import training
    from cartoon.stylegan.train import build_parser

    monkeypatch.setattr(training, "native_precision", lambda: "fp32")
    fresh = parse_resumable(build_parser(), [])
    assert fresh.precision == fresh.render_precision == "fp32"
    assert parse_resumable(build_parser(), ["--precision", "bf16"]).render_precision == "bf16"
    models, optimisers = trained()
    export(tmp_path, models, optimisers, **recorded)  # started in bf16 on a machine that has it
    resumed = parse_resumable(build_parser(), ["--resume-from", str(tmp_path)])
    assert resumed.precision == "fp32" and resumed.render_precision == "bf16"  # trains as this machine does, draws as before


def test_a_folder_without_state_is_refused_with_a_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training state"):
        read_training_state(tmp_path)


def test_acgan_export_resumes_on_a_new_run_folder(tmp_path):
    from cartoon.acgan.train import parse_args, train
    from cartoon.acgan.train import export as export_run

    tiny = ["--limit", "64", "--batch-size", "8", "--width", "8", "--blocks", "1", "--d-width", "4", "--log-every", "1",
            "--sample-every", "1000", "--save-every", "1000", "--snapshot-every", "1000", "--threads", "1", "--device", "cpu"]
    train(parse_args(["--run-dir", str(tmp_path / "a"), "--steps", "3", *tiny]))
    export_run(parse_args(["--run-dir", str(tmp_path / "a"), "--export", str(tmp_path / "shipped")]))
    before = Run(tmp_path / "a").read_checkpoint()

    resumed = parse_args(["--resume-from", str(tmp_path / "shipped"), "--run-dir", str(tmp_path / "b"), "--steps", "4"])
    assert (resumed.width, resumed.blocks, resumed.d_width, resumed.limit) == (8, 1, 4, 64)  # the run's own arguments
    train(resumed)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [4]  # one more step, numbered after the export's three
    after = Run(tmp_path / "b").read_checkpoint()
    assert after["step"] == 4
    # the critic went on from the exported weights: one small step away, not a fresh initialisation
    for key, old in before["discriminator"].items():  # weights, not spectral norm's power-iteration vectors
        if old.is_floating_point() and old.numel() > 16 and not key.endswith(("_u", "_v")):
            moved = (after["discriminator"][key] - old).abs().mean()
            assert moved < 0.1 * old.abs().mean() + 1e-3, key
