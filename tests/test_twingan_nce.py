"""The patchwise contrastive term: what it rewards, what it trains, and a run that carries its heads."""

import json

import pytest
import torch

from cartoon.twingan.model import TwinGAN
from cartoon.twingan.nce import PatchNCE
from cartoon.twingan.train import main as train_main
from test_twingan_train import MACHINE, NORM_BATCHES, TINY, trained, write_faces  # noqa: F401 (a fixture)


def tiny_model() -> TwinGAN:
    return TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8, 16))


def test_the_features_are_every_encoder_side_and_the_code():
    model = tiny_model()
    features = model.features(torch.zeros(2, 3, 32, 32))
    assert sorted(features) == [4, 8, 16, 32]
    assert features[32].shape == (2, 8, 32, 32) and features[4].shape == (2, 32, 4, 4)
    _, skips = model.encode(torch.zeros(2, 3, 32, 32))
    assert sorted(skips) == [8, 16]  # the generator is still handed only its skips
    with pytest.raises(ValueError, match="side"):
        PatchNCE(model, sides=(64,))


def test_a_translation_that_keeps_the_layout_scores_better_than_one_that_moves_it():
    torch.manual_seed(0)
    model, photos = tiny_model(), torch.rand(2, 3, 32, 32) * 2 - 1
    nce = PatchNCE(model, sides=(16, 8), patches=32)
    recoloured = (photos * 0.5 + 0.3).clamp(-1, 1)  # other colours, same places
    moved = photos.roll(shifts=(9, 13), dims=(2, 3))  # the same picture, elsewhere
    kept, lost = nce(model, photos, recoloured), nce(model, photos, moved)
    assert kept < lost


def test_only_the_translation_side_learns():
    torch.manual_seed(0)
    model = tiny_model()
    nce = PatchNCE(model, sides=(8, 16), patches=16)
    assert nce.sides == (16, 8)  # one order, whatever the flags' order
    photos, translations = (torch.rand(2, 3, 32, 32).requires_grad_() for _ in range(2))
    nce(model, photos, translations).backward()
    assert photos.grad is None and translations.grad is not None and translations.grad.abs().sum() > 0


def test_the_loss_falls_as_the_heads_and_the_encoder_learn_where_things_are():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, photos = tiny_model(), torch.rand(4, 3, 32, 32) * 2 - 1
    nce = PatchNCE(model, sides=(16, 8), patches=32)
    optimiser = torch.optim.Adam([*model.parameters(), *nce.parameters()], lr=1e-3)
    translations = torch.flip(photos, dims=(1,))  # channels swapped: a recoloured picture with the same layout
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # the same patches each time, so the values compare
        loss = nce(model, photos, translations)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    torch.set_num_threads(threads)
    assert losses[-1] < 0.8 * losses[0]
    assert all(p.grad is not None for p in nce.parameters())


def test_a_run_with_the_term_checkpoints_exports_and_resumes_its_heads(trained, tmp_path):
    run, exported, went_on = (tmp_path / name for name in ("run", "export", "went-on"))
    folders = ["--photos", str(trained / "photos"), "--anime", str(trained / "anime")]
    train_main(TINY + folders + ["--run-dir", str(run), "--steps", "2", "--nce-weight", "1", "--nce-sides", "16", "8"])
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert {key.split(".")[1] for key in checkpoint["nce"]} == {"16", "8"}
    assert {int(s["step"]) for s in checkpoint["opt_nce"]["state"].values()} == {2}
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert all(record["loss_nce"] > 0 for record in logged)

    train_main(["--run-dir", str(run), "--export", str(exported)] + NORM_BATCHES)
    record = json.loads((exported / "training.json").read_text())
    assert "nce" in record["modules"] and "opt_nce" in record["optimisers"]
    train_main(["--resume-from", str(exported), "--run-dir", str(went_on), "--steps", "3", "--lr", "0"] + MACHINE)
    went = torch.load(went_on / "checkpoint.pt", map_location="cpu", weights_only=True)
    # at rate 0 the heads are the run's, restored from the export (which keeps them in bfloat16), and their moments went on
    assert all(torch.allclose(went["nce"][name], checkpoint["nce"][name], rtol=1e-2, atol=0) for name in checkpoint["nce"])
    # Adam's count goes on where the heads' moments fit the export's budget (last in line), else starts afresh
    assert {int(s["step"]) for s in went["opt_nce"]["state"].values()} == {1 if "opt_nce" in record["moments_omitted"] else 3}

    # a resume builds the heads the run recorded, whatever sides the flags name
    train_main(["--run-dir", str(went_on), "--resume", "--steps", "4", "--nce-weight", "1", "--nce-sides", "32"] + MACHINE)
    resumed = torch.load(went_on / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert {key.split(".")[1] for key in resumed["nce"]} == {"16", "8"} and resumed["step"] == 4
