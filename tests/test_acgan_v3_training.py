"""Avatars v3's ACGAN training: its colour terms and readers, and runs that start from an export, resume and export."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from test_acgan_v3_generator import CLASSES, TINY, pixels, z

from cartoon.acgan import Recipe, avatars
from cartoon.acgan.evaluate import load_avatar_generator, sample_every_pair
from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.stylegan.colour_readers import TwinClassifier
from cartoon.stylegan.model import Generator
from cartoon.stylegan.step import fake_colours, generate, train_step
from cartoon.stylegan.train import build_models, initialise, parse_args
from cartoon.stylegan.train import main as train_main
from cartoon.training import Run
from cartoon.training_state import read_training_state

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def faces(tagged_faces):
    """16 random 16² faces in four (hair, eyes) pairs."""
    return tagged_faces(16, 16, lambda i: (HAIR_COLOURS[i % 2], EYE_COLOURS[i // 2 % 2]))


def tiny_flags(faces, run):
    return ["--data", str(faces), "--run-dir", str(run), "--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2",
            "--max-channels", "8", "--batch-size", "4", "--held-out-per-pair", "1", "--r1-every", "2", "--threads", "1",
            "--log-every", "1", "--sample-every", "2", "--save-every", "2"]


def test_colour_terms_fall_on_a_tiny_batch():
    """The critic learns the real faces' colours and the generator learns to draw faces it reads as asked."""
    args = parse_args(["--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2", "--max-channels", "8",
                       "--condition", "colours", "--diffaugment", "none", "--mixing", "0", "--r1", "0", "--lr", "0.005"])
    torch.manual_seed(0)
    models = build_models(args, "cpu")
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    hair, eyes = torch.tensor([0, 1, 2, 3] * 2), torch.tensor([0, 0, 1, 1] * 2)
    pairs = torch.tensor([[0, 0], [1, 0], [2, 1], [3, 1]])
    logged = [train_step(args, models, real, step, (hair, eyes, pairs)) for step in range(60)]
    logged = [{key: float(value.detach()) for key, value in values.items()} for values in logged]
    early, late = logged[:10], logged[-10:]
    for key in ("cls_real", "cls_fake"):
        assert np.mean([v[key] for v in late]) < 0.7 * np.mean([v[key] for v in early]), key
    assert np.mean([v["acc_hair_real"] for v in late]) > np.mean([v["acc_hair_real"] for v in early])


def test_twin_heads_start_as_the_critics_and_learn_the_generated_faces_colours():
    args = parse_args(["--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2", "--max-channels", "8",
                       "--condition", "colours", "--twin-weight", "1", "--diffaugment", "none", "--mixing", "0", "--r1", "0",
                       "--lr", "0.005"])
    torch.manual_seed(0)
    models = build_models(args, "cpu")
    twin, critic = models["twin"], models["discriminator"]
    twin.start_from(critic)
    with torch.no_grad():
        features = critic.features(torch.rand(4, 3, 16, 16) * 2 - 1)
        assert all(torch.equal(a, b) for a, b in zip(twin(features), critic.classify(features)))
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    hair, eyes = torch.tensor([0, 1, 2, 3] * 2), torch.tensor([0, 0, 1, 1] * 2)
    pairs = torch.tensor([[0, 0], [1, 0], [2, 1], [3, 1]])
    logged = [float(train_step(args, models, real, step, (hair, eyes, pairs))["cls_fake_twin"].detach()) for step in range(60)]
    assert np.mean(logged[-10:]) < 0.7 * np.mean(logged[:10])
    with torch.no_grad():  # the twin has learnt from generated faces what the critic's heads never saw
        assert not torch.allclose(twin(features)[0], critic.classify(features)[0])


def test_a_colour_run_resumes_into_twin_heads_that_start_as_its_critics(faces, tmp_path, monkeypatch):
    flags = tiny_flags(faces, tmp_path / "run") + ["--condition", "colours"]
    assert train_main(flags + ["--steps", "2"]) == 0
    critic = Run(tmp_path / "run").read_checkpoint()["discriminator"]
    started = []  # the twin's heads just after each start
    start_from = TwinClassifier.start_from

    def recorded(twin, discriminator):
        start_from(twin, discriminator)
        started.append({k: v.clone() for k, v in twin.state_dict().items()})

    monkeypatch.setattr(TwinClassifier, "start_from", recorded)
    assert train_main(flags + ["--twin-weight", "1", "--steps", "4", "--resume"]) == 0
    assert len(started) == 1 and all(torch.equal(v, critic[k]) for k, v in started[0].items())  # the resumed critic's heads
    assert train_main(flags + ["--twin-weight", "1", "--steps", "6", "--resume"]) == 0
    assert len(started) == 1  # a run that has twin heads keeps its own
    checkpoint = Run(tmp_path / "run").read_checkpoint()
    assert checkpoint["step"] == 6 and "opt_twin" in checkpoint
    assert not all(torch.equal(v, critic[k]) for k, v in checkpoint["twin"].items())  # they have learnt since
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert ["cls_fake_twin" in record for record in log] == [False, False, True, True, True, True]
    assert all(np.isfinite(record["cls_fake_twin"]) for record in log[2:])


def test_thumbnail_reader_learns_real_hair_and_pays_the_generator_for_it(faces, tmp_path):
    args = parse_args(["--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2", "--max-channels", "8",
                       "--condition", "colours", "--thumbnail-weight", "1", "--diffaugment", "none", "--mixing", "0", "--r1", "0",
                       "--lr", "0.005"])
    torch.manual_seed(0)
    models = build_models(args, "cpu")
    hair, eyes = torch.tensor([0, 1, 2, 3] * 2), torch.tensor([0, 0, 1, 1] * 2)
    tint = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]])[hair]  # each hair colour its own tint
    real = (0.6 * tint[:, :, None, None] + 0.3 * torch.randn(8, 3, 16, 16)).clamp(-1, 1)
    pairs = torch.tensor([[0, 0], [1, 0], [2, 1], [3, 1]])
    logged = [train_step(args, models, real, step, (hair, eyes, pairs)) for step in range(60)]
    logged = [{key: float(value.detach()) for key, value in values.items()} for values in logged]
    assert np.mean([v["acc_thumb_real"] for v in logged[-10:]]) == 1.0
    for key in ("thumb_real", "thumb_fake"):
        assert np.mean([v[key] for v in logged[-10:]]) < 0.5 * np.mean([v[key] for v in logged[:10]]), key
    # a run without the reader resumes into one with it, the reader starting fresh
    flags = tiny_flags(faces, tmp_path / "run") + ["--condition", "colours"]
    assert train_main(flags + ["--steps", "2"]) == 0
    assert train_main(flags + ["--thumbnail-weight", "1", "--steps", "4", "--resume"]) == 0
    checkpoint = Run(tmp_path / "run").read_checkpoint()
    assert checkpoint["step"] == 4 and "opt_thumb" in checkpoint and "thumb" in checkpoint
    # the reader's thumbnail side is a flag: it reads any face size through its own
    small = build_models(parse_args(tiny_flags(faces, tmp_path / "unused") + ["--condition", "colours", "--thumbnail-weight", "1",
                                                                             "--thumbnail-size", "8"]), "cpu")["thumb"]
    assert small.size == 8 and small(torch.rand(3, 3, 16, 16)).shape == (3, len(HAIR_COLOURS))


def test_frozen_readers_pay_the_generator_as_the_run_started_while_the_critic_learns_on(faces, tmp_path):
    flags = tiny_flags(faces, tmp_path / "run") + ["--condition", "colours", "--thumbnail-weight", "1", "--lr", "0.01"]
    with pytest.raises(ValueError, match="not learnt"):  # a fresh run has nothing learnt to freeze
        train_main(flags + ["--frozen-readers", "--steps", "2"])
    assert train_main(flags + ["--steps", "2"]) == 0
    started = Run(tmp_path / "run").read_checkpoint()

    def assert_frozen_as_started(payload):
        assert all(torch.equal(v, started["discriminator"][k]) for k, v in payload["frozen_critic"].items())
        assert all(torch.equal(v, started["thumb"][k]) for k, v in payload["thumb"].items())
        assert not all(torch.equal(v, started["discriminator"][k]) for k, v in payload["discriminator"].items())

    for steps in ("4", "6"):  # first given the flag, then resumed with it
        assert train_main(flags + ["--frozen-readers", "--steps", steps, "--resume"]) == 0
        assert_frozen_as_started(Run(tmp_path / "run").read_checkpoint())
    # a new machine continues from an export with the same frozen readers (as the export stores them: bf16)
    assert train_main(flags + ["--export", str(tmp_path / "export")]) == 0
    exported = read_training_state(tmp_path / "export")
    assert all(torch.allclose(v.float(), started["discriminator"][k], rtol=1e-2, atol=1e-4) for k, v in exported["frozen_critic"].items())
    moved = tiny_flags(faces, tmp_path / "moved") + ["--resume-from", str(tmp_path / "export"), "--steps", "8"]
    assert train_main(moved) == 0
    kept = Run(tmp_path / "moved").read_checkpoint()
    for name in ("frozen_critic", "thumb"):
        assert all(torch.equal(v, exported[name][k].float()) for k, v in kept[name].items()), name


def test_frozen_readers_read_the_generators_faces_with_their_own_weights():
    args = parse_args(["--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2", "--max-channels", "8",
                       "--condition", "colours", "--thumbnail-weight", "1", "--frozen-readers", "--diffaugment", "none",
                       "--mixing", "0", "--r1", "0"])
    torch.manual_seed(0)
    models = build_models(args, "cpu")
    assert "opt_thumb" not in models and not any(p.requires_grad for p in models["thumb"].parameters())
    with torch.no_grad():  # heads that know nothing read chance
        for layer in (models["frozen_critic"].hair[-1], models["frozen_critic"].eyes[-1]):
            layer.weight.zero_()
            layer.bias.zero_()
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    hair, eyes = torch.tensor([0, 1, 2, 3] * 2), torch.tensor([0, 0, 1, 1] * 2)
    pairs = torch.tensor([[0, 0], [1, 0], [2, 1], [3, 1]])
    frozen = {k: v.clone() for k, v in models["thumb"].state_dict().items()}
    logged = train_step(args, models, real, 0, (hair, eyes, pairs))
    assert float(logged["cls_fake"]) == pytest.approx(np.log(len(HAIR_COLOURS)) + np.log(len(EYE_COLOURS)), rel=1e-3)
    assert all(torch.equal(v, frozen[k]) for k, v in models["thumb"].state_dict().items())
    assert np.isfinite(float(logged["thumb_fake"]))  # the step pays its generator for the frozen reader's reading
    # ... and that reading moves with the generator's weights
    fake = generate(args, models["generator"], 4, "cpu", models["generator"].colours(hair[:4], eyes[:4]))[0]
    F.cross_entropy(models["thumb"](fake), hair[:4]).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in models["generator"].parameters())
    with pytest.raises(ValueError, match="twin"):
        build_models(parse_args(["--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2", "--max-channels", "8",
                                 "--condition", "colours", "--frozen-readers", "--twin-weight", "1"]), "cpu")


def test_a_colour_run_resumes_into_colour_styles_that_learn_and_export(faces, tmp_path):
    flags = tiny_flags(faces, tmp_path / "run") + ["--condition", "colours", "--lr", "0.01"]
    assert train_main(flags + ["--steps", "2"]) == 0
    before = Run(tmp_path / "run").read_checkpoint()
    assert train_main(flags + ["--colour-styles", "4", "--steps", "6", "--resume"]) == 0
    after = Run(tmp_path / "run").read_checkpoint()
    assert after["step"] == 6 and "opt_colour_styles" in after
    assert after["ema"]["colour_styles"].shape == (4, 22, 16) and after["generator"]["colour_styles"].abs().sum() > 0
    assert not torch.equal(after["generator"]["mapping.embed.weight"], before["generator"]["mapping.embed.weight"])
    assert train_main(["--run-dir", str(tmp_path / "run"), "--export", str(tmp_path / "export")]) == 0
    exported = load_avatar_generator(tmp_path / "export")
    assert exported.colour_styles.shape == (4, 22, 16)
    ema = Generator(**TINY, **CLASSES, colour_styles=4)
    ema.load_state_dict(after["ema"])
    ema.measure_pair_w_avg()
    with torch.no_grad():
        hair, eyes = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
        assert torch.equal(exported(z(7), noise="fixed", hair=hair, eyes=eyes), ema(z(7), noise="fixed", hair=hair, eyes=eyes))


def test_mode_seeking_pairs_colours_and_pays_for_faces_that_differ():
    pairs = torch.tensor([[0, 0], [1, 0], [2, 1], [3, 1], [4, 2]])
    torch.manual_seed(0)
    hair, eyes = fake_colours(pairs, 8, paired=True)  # the term compares the batch's halves face by face
    assert torch.equal(hair[:4], hair[4:]) and torch.equal(eyes[:4], eyes[4:])
    assert all([h, e] in pairs.tolist() for h, e in zip(hair.tolist(), eyes.tolist()))
    args = parse_args(["--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2", "--max-channels", "8",
                       "--condition", "colours", "--mode-seeking", "1"])
    models = build_models(args, "cpu")
    logged = train_step(args, models, torch.rand(8, 3, 16, 16) * 2 - 1, 1, (hair[:1].repeat(8), eyes[:1].repeat(8), pairs))
    assert float(logged["mode_seeking"].detach()) > 0


def test_paired_faces_differ_by_their_z_alone(monkeypatch):
    """Halves of a paired batch share noise and mixing w's: were their z's equal, so would their faces be."""
    args = parse_args(["--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2", "--max-channels", "8",
                       "--condition", "colours", "--mode-seeking", "1", "--mixing", "1"])
    generator = build_models(args, "cpu")["generator"]
    with torch.no_grad():
        for block in generator.blocks:
            for conv in block.convs:
                conv.noise_strength.fill_(1.0)  # noise that shows
    colours = generator.colours(torch.tensor([0, 1, 2, 3] * 2), torch.tensor([0, 1, 1, 0] * 2))
    with torch.no_grad():
        faces, z = generate(args, generator, 8, "cpu", colours, paired=True)
        assert not torch.allclose(faces[:4], faces[4:], atol=1e-3)
        draw, calls = torch.randn, []

        def same_z_in_both_halves(*shape, **options):  # the first draw of generate is the z's
            values = draw(*shape, **options)
            calls.append(shape)
            if len(calls) == 1:
                values[4:] = values[:4]
            return values

        monkeypatch.setattr(torch, "randn", same_z_in_both_halves)
        faces, _ = generate(args, generator, 8, "cpu", colours, paired=True)
    assert torch.allclose(faces[:4], faces[4:], atol=1e-5)


def test_colour_training_starts_from_an_unconditional_export_resumes_and_exports(faces, tmp_path):
    plain_run = tmp_path / "plain"
    assert train_main(tiny_flags(faces, plain_run) + ["--steps", "2"]) == 0
    assert train_main(["--run-dir", str(plain_run), "--export", str(tmp_path / "plain-export")]) == 0

    # initialised, the conditional generator draws the unconditional export's faces
    args = parse_args(tiny_flags(faces, tmp_path / "unused") + ["--condition", "colours"])
    models = build_models(args, "cpu")
    initialise(models, str(tmp_path / "plain-export"))
    exported = Generator.from_pretrained(tmp_path / "plain-export", strict=True).eval()
    with torch.no_grad():
        drawn = models["ema"].eval()(z(6), noise="fixed", hair=torch.tensor([0, 1, 0, 1]), eyes=torch.tensor([0, 0, 1, 1]))
        assert torch.allclose(drawn, exported(z(6), noise="fixed"), atol=1e-5)
    with pytest.raises(RuntimeError, match="size mismatch"):  # another architecture
        initialise(build_models(parse_args(tiny_flags(faces, tmp_path / "unused") + ["--latent-dim", "8"]), "cpu"),
                   str(tmp_path / "plain-export"))

    run = tmp_path / "v3"
    flags = tiny_flags(faces, run) + ["--condition", "colours", "--precision", "bf16"]  # as on a machine with native bf16
    assert train_main(flags + ["--init-from", str(tmp_path / "plain-export"), "--steps", "2"]) == 0
    assert train_main(flags + ["--steps", "4", "--resume"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3, 4]
    assert all(np.isfinite(record["cls_real"]) and 0 <= record["acc_eyes_fake"] <= 1 for record in log)
    assert Image.open(run / "samples" / "step_000004.png").size == (8 * 18 + 2, 8 * 18 + 2)  # 8 colour pairs × 8 faces

    assert train_main(["--run-dir", str(run), "--export", str(tmp_path / "v3-export")]) == 0
    v3 = load_avatar_generator(tmp_path / "v3-export")
    assert v3.conditional and v3.pair_w_avg.abs().sum() > 0
    ema = Generator(**TINY, **CLASSES)
    ema.load_state_dict(Run(run).read_checkpoint()["ema"])
    ema.measure_pair_w_avg()  # what the export adds, with the same seeded z's
    with torch.no_grad():
        hair, eyes = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
        assert torch.equal(v3(z(7), noise="fixed", hair=hair, eyes=eyes), ema(z(7), noise="fixed", hair=hair, eyes=eyes))
    # drawn as avatars in the run's bf16, a face alone is still the face of the grid
    assert v3.render_precision == "bf16"
    faces, own = avatars(Recipe("random", "random", seed=3, n=6, trunc=0.8, version=3), v3)
    assert np.array_equal(pixels(avatars(own[5], v3)[0])[0], pixels(faces)[5])
    images, hair, eyes = sample_every_pair(v3, per_pair=1)
    assert images.shape == (120, 3, 16, 16) and torch.equal(images, sample_every_pair(v3, per_pair=1)[0])
    assert train_main(flags + ["--run-dir", str(tmp_path / "again"), "--resume-from", str(tmp_path / "v3-export"), "--steps", "5"]) == 0
    assert Run(tmp_path / "again").read_checkpoint()["step"] == 5
