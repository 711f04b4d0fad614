"""The style-based generator: shapes, fixed noise, truncation, style mixing, feature edits, saving, training."""

import json

import numpy as np
import pytest
import torch

from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.stylegan.critic import Discriminator
from cartoon.stylegan.model import FeatureEdit, Generator
from cartoon.stylegan.train import main as train_main
from cartoon.training import Run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    model = Generator(resolution=32, latent_dim=32, mapping_layers=2, max_channels=16).eval()
    with torch.no_grad():  # a mean w away from zero, as training leaves it, and noise that shows
        model.w_avg.normal_()
        for block in model.blocks:
            for conv in block.convs:
                conv.noise_strength.fill_(0.5)
    return model


def z(seed, n=2, dim=32):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_shapes(generator):
    assert generator(z(0, n=3)).shape == (3, 3, 32, 32)
    assert generator.num_ws == 8 and generator.block_sizes == [4, 8, 16, 32]
    images, features = generator.synthesis(generator.styles(generator.mapping(z(0))), features=[0, 3])
    assert features[0].shape == (2, 16, 4, 4) and features[3].shape == (2, 16, 16, 16)
    assert Discriminator(resolution=32, max_channels=16)(images).shape == (2,)


def test_fixed_noise_and_seed_give_the_same_pixels(generator):
    with torch.no_grad():
        first, again = generator(z(1), noise="fixed"), generator(z(1), noise="fixed")
        assert torch.equal(first, again)
        assert not torch.equal(generator(z(1)), generator(z(1)))  # fresh noise each call
        assert not torch.equal(first, generator(z(2), noise="fixed"))


def test_truncation_zero_gives_the_mean_face(generator):
    with torch.no_grad():
        one, other = generator(z(1), truncation=0, noise="fixed"), generator(z(2), truncation=0, noise="fixed")
        mean_face = generator.synthesis(generator.styles(generator.w_avg[None]), noise="fixed")
    assert torch.allclose(one, other) and torch.allclose(one[:1], mean_face, atol=1e-5)


def test_style_mixing_at_either_end_is_one_w(generator):
    w, w_mix = generator.mapping(z(1)), generator.mapping(z(2))
    with torch.no_grad():
        only = [generator.synthesis(generator.styles(v), noise="fixed") for v in (w, w_mix)]
        assert torch.equal(generator.synthesis(generator.styles(w, w_mix, 0), noise="fixed"), only[1])
        assert torch.equal(generator.synthesis(generator.styles(w, w_mix, generator.num_ws), noise="fixed"), only[0])
        halfway = generator.synthesis(generator.styles(w, w_mix, 4), noise="fixed")
    assert not torch.equal(halfway, only[0]) and not torch.equal(halfway, only[1])
    with pytest.raises(ValueError, match="crossover"):
        generator.styles(w, w_mix, generator.num_ws + 1)


def test_masked_edit_changes_its_region_and_nothing_at_amount_zero(generator):
    ws = generator.styles(generator.mapping(z(3)))
    mask = torch.zeros(16, 16)
    mask[:8, :8] = 1  # the top-left quarter of block 3's input
    edit = FeatureEdit(block=3, channels=[1, 5], weights=[1.0, -0.5], mask=mask, amount=3.0)
    with torch.no_grad():
        plain, features = generator.synthesis(ws, noise="fixed", features=[3])
        unchanged = generator.synthesis(ws, noise="fixed", edits=[FeatureEdit(3, [1, 5], [1.0, -0.5], mask, amount=0.0)])
        edited, edited_features = generator.synthesis(ws, noise="fixed", edits=[edit], features=[3])
    assert torch.equal(unchanged, plain)
    offset = edited_features[3] - features[3]
    assert torch.allclose(offset[:, 1], 3.0 * mask.expand(2, -1, -1)) and torch.allclose(offset[:, 5], -1.5 * mask.expand(2, -1, -1))
    change = (edited - plain).abs().mean((0, 1))  # (32, 32)
    inside = change[:16, :16].mean()
    outside = (change.sum() - change[:16, :16].sum()) / (32 * 32 - 16 * 16)
    assert inside > 3 * outside
    with pytest.raises(ValueError, match="channels"):
        generator.synthesis(ws, edits=[FeatureEdit(3, [99], [1.0], mask)])
    with pytest.raises(ValueError, match="block"):
        generator.synthesis(ws, features=[7])


def test_save_and_load_keep_pixels(generator, tmp_path):
    generator.save_pretrained(tmp_path / "model")
    loaded = Generator.from_pretrained(tmp_path / "model", strict=True)
    assert json.loads((tmp_path / "model" / "config.json").read_text())["max_channels"] == 16
    with torch.no_grad():
        assert torch.equal(loaded(z(4), truncation=0.7, noise="fixed"), generator(z(4), truncation=0.7, noise="fixed"))


@pytest.fixture
def faces(tagged_faces):
    """12 random 64² faces in two (hair, eyes) pairs."""
    return tagged_faces(12, 64, lambda i: (HAIR_COLOURS[i % 2], EYE_COLOURS[0]))


def test_training_checkpoints_resumes_and_exports(faces, tmp_path):
    run = tmp_path / "run"
    tiny = ["--data", str(faces), "--run-dir", str(run), "--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2",
            "--max-channels", "8", "--batch-size", "4", "--held-out-per-pair", "1", "--r1-every", "2", "--threads", "1",
            "--log-every", "1", "--sample-every", "2", "--save-every", "2"]
    assert train_main(tiny + ["--steps", "2"]) == 0
    assert Run(run).read_checkpoint()["step"] == 2
    assert (run / "samples" / "step_000002.png").is_file()
    assert train_main(tiny + ["--steps", "4", "--resume"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3, 4]
    assert all(np.isfinite(record["loss_d"]) and np.isfinite(record["loss_g"]) for record in log)
    assert "r1" in log[0] and "r1" not in log[1]  # lazy: every other step here

    assert train_main(["--run-dir", str(run), "--export", str(tmp_path / "export")]) == 0
    exported = Generator.from_pretrained(tmp_path / "export", strict=True)
    ema = Generator(16, 16, 2, 8)
    ema.load_state_dict(Run(run).read_checkpoint()["ema"])
    with torch.no_grad():
        assert torch.equal(exported(z(5, dim=16), noise="fixed"), ema(z(5, dim=16), noise="fixed"))
    assert train_main(tiny + ["--run-dir", str(tmp_path / "again"), "--resume-from", str(tmp_path / "export"), "--steps", "5"]) == 0
    assert Run(tmp_path / "again").read_checkpoint()["step"] == 5

    # a resumed run trains at the rate its flags ask for, and decays it to 0 at --steps
    assert train_main(tiny + ["--run-dir", str(tmp_path / "again"), "--resume", "--steps", "8", "--lr", "0.001", "--lr-decay-from", "6"]) == 0
    log = [json.loads(line) for line in (tmp_path / "again" / "log.jsonl").read_text().splitlines()]
    assert [record["lr"] for record in log if record["step"] > 5] == [0.001, 0.001, 0.0005]
    saved = Run(tmp_path / "again").read_checkpoint()["opt_g"]["param_groups"][0]["lr"]
    assert saved == pytest.approx(0.0005)


def test_evaluation_samples_are_reproducible_and_a_repeated_face_has_no_diversity(generator):
    from cartoon.acgan.evaluate import PerceptualDistance
    from cartoon.stylegan.evaluate import diversity, sample

    first, again, other = sample(generator, 6, seed=3), sample(generator, 6, seed=3), sample(generator, 6, seed=4)
    assert first.shape == (6, 3, 32, 32) and first.dtype == torch.uint8
    assert torch.equal(first, again) and not torch.equal(first, other)
    distance = PerceptualDistance()
    repeated = first[:1].expand(6, -1, -1, -1)
    assert diversity(repeated, groups=2, distance=distance, size=3) == pytest.approx(0.0, abs=1e-6)
    assert diversity(first, groups=2, distance=distance, size=3) > 0
