"""Avatars version 3: the colour-conditioned style-based generator, its ACGAN training, its recipes,
and the unconditional weights it starts from, which must keep their pixels."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import save_image

from cartoon.acgan import Recipe, avatars, morph, recipe_inputs, render, walk
from cartoon.acgan.evaluate import load_avatar_generator, sample_every_pair
from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.hub import WEIGHTS_DIR, load_model
from cartoon.stylegan.colour_readers import TwinClassifier
from cartoon.stylegan.critic import Discriminator
from cartoon.stylegan.model import CONDITION_PARTS, Generator
from cartoon.stylegan.step import fake_colours, generate, train_step
from cartoon.stylegan.train import GRID_SIDE, build_models, grid_faces, initialise, parse_args
from cartoon.stylegan.train import main as train_main
from cartoon.training import Run
from cartoon.training_state import read_training_state

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(resolution=16, latent_dim=16, mapping_layers=2, max_channels=8)
CLASSES = dict(hair_classes=len(HAIR_COLOURS), eye_classes=len(EYE_COLOURS))
RUNS = WEIGHTS_DIR.parent / "runs"


def z(seed, n=4, dim=16):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def pixels(images):
    return np.stack([np.asarray(i) for i in images])


@pytest.fixture(scope="module")
def plain():
    torch.manual_seed(0)
    model = Generator(**TINY).eval()
    with torch.no_grad():
        model.w_avg.normal_()
    return model


@pytest.fixture(scope="module")
def conditional(plain):
    """The unconditional weights under a colour condition, as `--init-from` starts it."""
    model = Generator(**TINY, **CLASSES).eval()
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith(CONDITION_PARTS) for key in missing)
    return model


@pytest.fixture(scope="module")
def taught(conditional):
    """The conditional generator once its condition has weights, as training leaves them."""
    model = Generator(**TINY, **CLASSES).eval()
    model.load_state_dict(conditional.state_dict())
    with torch.no_grad():
        torch.manual_seed(1)
        model.mapping.condition_in.weight.normal_()
    model.measure_pair_w_avg(samples=64)
    return model


def test_conditional_generator_at_init_draws_what_the_unconditional_one_drew(plain, conditional):
    hair, eyes = torch.tensor([0, 3, 5, 11]), torch.tensor([1, 2, 9, 0])
    with torch.no_grad():
        # truncation's arithmetic runs at any ψ, so the same centre gives the same pixels, at ψ = 1 too
        conditional.pair_w_avg.copy_(plain.w_avg.expand_as(conditional.pair_w_avg))
        for psi in (1.0, 0.6):
            assert torch.equal(conditional(z(1), psi, noise="fixed", hair=hair, eyes=eyes), plain(z(1), psi, noise="fixed"))
        conditional.measure_pair_w_avg(samples=64)
        mean_w = plain.mapping(torch.randn(64, 16, generator=torch.Generator().manual_seed(0))).mean(0)
        assert torch.allclose(conditional.pair_w_avg, mean_w.expand_as(conditional.pair_w_avg), atol=1e-5)
        # truncation pulls toward the pair's mean w, here the one mean of the unconditional faces
        w = plain.mapping(z(2))
        expected = plain.synthesis(plain.styles(mean_w + 0.5 * (w - mean_w)), noise="fixed")
        assert torch.allclose(conditional(z(2), 0.5, noise="fixed", hair=hair, eyes=eyes), expected, atol=1e-5)
    with pytest.raises(ValueError, match="needs hair and eyes"):
        conditional(z(1))
    with pytest.raises(ValueError, match="takes neither"):
        plain(z(1), hair=hair, eyes=eyes)


def test_colours_change_the_faces_once_the_condition_has_weights(taught):
    hair, eyes = torch.tensor([3, 3, 3, 3]), torch.tensor([8, 8, 8, 8])
    with torch.no_grad():
        blue = taught(z(3), noise="fixed", hair=hair, eyes=eyes)
        assert torch.equal(blue, taught(z(3), noise="fixed", hair=hair, eyes=eyes))
        assert not torch.allclose(blue, taught(z(3), noise="fixed", hair=hair + 1, eyes=eyes), atol=1e-3)
        assert not torch.allclose(blue, taught(z(3), noise="fixed", hair=hair, eyes=eyes - 1), atol=1e-3)
        one_hot = torch.nn.functional.one_hot(hair, 12).float(), torch.nn.functional.one_hot(eyes, 10).float()
        assert torch.equal(blue, taught(z(3), noise="fixed", hair=one_hot[0], eyes=one_hot[1]))
        # ψ = 0: every face of a pair is that pair's mean face, and pairs differ
        mean_faces = taught(z(4), 0.0, noise="fixed", hair=torch.tensor([3, 3, 6, 6]), eyes=eyes)
    assert torch.allclose(mean_faces[0], mean_faces[1], atol=1e-5) and torch.allclose(mean_faces[2], mean_faces[3], atol=1e-5)
    assert not torch.allclose(mean_faces[0], mean_faces[2], atol=1e-3)


def test_save_and_load_keep_the_condition_and_pair_means(taught, tmp_path):
    taught.save_pretrained(tmp_path / "v3")
    assert json.loads((tmp_path / "v3" / "config.json").read_text())["hair_classes"] == 12
    loaded = load_avatar_generator(tmp_path / "v3")
    assert isinstance(loaded, Generator) and torch.equal(loaded.pair_w_avg, taught.pair_w_avg)
    hair, eyes = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8])
    with torch.no_grad():
        assert torch.equal(loaded(z(5), 0.7, noise="fixed", hair=hair, eyes=eyes), taught(z(5), 0.7, noise="fixed", hair=hair, eyes=eyes))


def test_colour_styles_start_at_zero_then_offset_only_the_last_styles(taught):
    styled = Generator(**TINY, **CLASSES, colour_styles=3).eval()
    missing, unexpected = styled.load_state_dict(taught.state_dict(), strict=False)
    assert missing == ["colour_styles"] and not unexpected and "colour_styles".startswith(CONDITION_PARTS)
    hair, eyes = torch.tensor([3, 3, 6, 6]), torch.tensor([8, 8, 1, 1])
    with torch.no_grad():
        assert torch.equal(styled(z(8), 0.7, noise="fixed", hair=hair, eyes=eyes), taught(z(8), 0.7, noise="fixed", hair=hair, eyes=eyes))
        torch.manual_seed(2)
        styled.colour_styles.normal_()
        colours = styled.colours(hair, eyes)
        w = styled.mapping(z(8), colours)
        plain_ws, offset_ws = styled.styles(w, colours=torch.zeros_like(colours)), styled.styles(w, colours=colours)
        assert torch.equal(offset_ws[:, :-3], plain_ws[:, :-3]) and not torch.allclose(offset_ws[:, -3:], plain_ws[:, -3:])
        # linear in the colours: blended weights blend the offsets
        blend = (colours[:1] + colours[2:3]) / 2
        halfway = styled.styles(w[:1], colours=blend)
        assert torch.allclose(halfway, (styled.styles(w[:1], colours=colours[:1]) + styled.styles(w[:1], colours=colours[2:3])) / 2, atol=1e-5)
        # truncation leaves the offsets whole: at ψ = 0 a pair's faces are one face, and no longer the mapping-only one
        mean_faces = styled(z(9), 0.0, noise="fixed", hair=hair, eyes=eyes)
        assert torch.allclose(mean_faces[0], mean_faces[1], atol=1e-5)
        assert not torch.allclose(mean_faces, taught(z(9), 0.0, noise="fixed", hair=hair, eyes=eyes), atol=1e-3)
    with pytest.raises(ValueError, match="need the colours"):
        styled.styles(w)
    with pytest.raises(ValueError, match="colour_styles"):
        Generator(**TINY, colour_styles=2)


def test_critic_heads_leave_its_realness_unchanged():
    torch.manual_seed(0)
    plain_critic = Discriminator(resolution=16, max_channels=8)
    critic = Discriminator(resolution=16, max_channels=8, **CLASSES)
    missing, unexpected = critic.load_state_dict(plain_critic.state_dict(), strict=False)
    assert not unexpected and all(key.startswith(CONDITION_PARTS) for key in missing)
    images = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(critic(images), plain_critic(images))
        hair, eyes = critic.classify(critic.features(images))
    assert hair.shape == (4, 12) and eyes.shape == (4, 10)


def test_recipes_of_a_style_based_generator_reproduce_faces_morph_and_walk(taught):
    recipe = Recipe("random", "green", seed=11, n=5, trunc=0.7, version=3)
    first, own = avatars(recipe, taught)
    assert first[0].size == (16, 16) and np.array_equal(pixels(first), pixels(avatars(str(recipe), taught)[0]))
    assert np.array_equal(pixels(avatars(own[3], taught)[0])[0], pixels(first)[3])  # a face alone is the same face
    # trunc is ψ toward the pair's mean w: at 0 every face of one pair is its mean face
    mean_faces = pixels(avatars(Recipe("blue", "red", seed=0, n=3, trunc=0.0, version=3), taught)[0])
    assert np.array_equal(mean_faces[0], mean_faces[2])
    start, end = Recipe("blue", "red", 3, trunc=0.6, version=3), Recipe("pink", "green", 9, trunc=1.2, version=3)
    frames = morph(start, end, frames=5, generator=taught)
    assert np.array_equal(np.asarray(frames[0]), pixels(avatars(start, taught)[0])[0])
    assert np.array_equal(np.asarray(frames[-1]), pixels(avatars(end, taught)[0])[0])
    # halfway: the colour embedding, z and ψ halfway, as drawn directly from the blended inputs
    (za, ha, ea, ta), (zb, hb, eb, tb) = (recipe_inputs(r, 16, scaled=False) for r in (start, end))
    halfway = render(taught, torch.lerp(za, zb, 0.5), (ha + hb) / 2, (ea + eb) / 2, (ta + tb) / 2)
    assert np.array_equal(np.asarray(morph(start, end, frames=3, mode="lerp", generator=taught)[1]), np.asarray(halfway[0]))
    loop, stops = walk(seed=5, stops=3, frames=6, generator=taught, version=3)
    assert all(s.version == 3 for s in stops)
    assert np.array_equal(np.asarray(loop[2]), pixels(avatars(stops[1], taught)[0])[0])


def test_versions_1_and_2_keep_drawing_scaled_noise():
    """v1/v2 recipes: the colour draws, then noise × trunc, rendered as before; pixels of their own weights."""
    if not all((WEIGHTS_DIR / name / "model.safetensors").is_file() for name in ("acgan", "acgan-v1")):
        pytest.skip("shipped avatar weights not installed")
    for version, name in ((1, "acgan-v1"), (2, "acgan")):
        generator = load_model(name, hub=False)
        recipe = Recipe("blue", "random", seed=7, n=3, trunc=0.8, version=version)
        inputs = []
        for k in range(3):
            stream = torch.Generator().manual_seed(7 + k)
            torch.randint(12, (1,), generator=stream)
            eyes = int(torch.randint(10, (1,), generator=stream))
            inputs.append((torch.randn(128, generator=stream) * 0.8, eyes))
        noise = torch.stack([n for n, _ in inputs])
        hair = torch.nn.functional.one_hot(torch.full((3,), HAIR_COLOURS.index("blue")), 12).float()
        eyes = torch.nn.functional.one_hot(torch.tensor([e for _, e in inputs]), 10).float()
        assert np.array_equal(pixels(avatars(recipe, generator)[0]), pixels(render(generator, noise, hair, eyes)))
        assert np.array_equal(pixels(avatars(str(recipe), generator)[0]), pixels(avatars(recipe)[0]))  # its own version's weights


def test_shipped_unconditional_weights_draw_their_shipped_faces():
    """weights/stylegan's card picture (Latent Lab, seeds 7–22, ψ 0.7, ×4) comes out as shipped, to the rounding of
    another CPU: a machine whose float kernels differ moves a few values across a rounding boundary (one
    level in 0.006% of them, on the machine of 2026-12-05), and a changed model or recipe moves far more."""
    if not (WEIGHTS_DIR / "stylegan" / "faces.png").is_file():
        pytest.skip("shipped style-based weights not installed")
    from cartoon.stylegan.lab import Recipe as LabRecipe, render_grid

    generator = Generator.from_pretrained(str(WEIGHTS_DIR / "stylegan"), strict=True).eval()
    shipped = np.asarray(Image.open(WEIGHTS_DIR / "stylegan" / "faces.png").convert("RGB"))
    drawn = np.asarray(render_grid(LabRecipe(seed=7, psi=0.7), 16, generator, scale=4))
    difference = np.abs(drawn.astype(int) - shipped.astype(int))
    assert drawn.shape == shipped.shape and difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_paused_unconditional_run_draws_its_last_sample_grid(tmp_path):
    """runs/stylegan's checkpoint loads strictly and its EMA draws the grid the run saved at that step."""
    checkpoint = RUNS / "stylegan" / "checkpoint.pt"
    if not checkpoint.is_file():
        pytest.skip("no paused style-based run here")
    payload = Run(RUNS / "stylegan").read_checkpoint()
    grid = RUNS / "stylegan" / "samples" / f"step_{payload['step']:06d}.png"
    if not grid.is_file():
        pytest.skip("the run saved no grid at its checkpoint's step")
    models = build_models(parse_args([]), "cpu")  # the run's own (default) architecture, channels-last as it trained
    Run.restore(payload, **models)
    save_image(grid_faces(models["ema"], "cpu") * 0.5 + 0.5, tmp_path / "grid.png", nrow=GRID_SIDE)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "grid.png")), np.asarray(Image.open(grid)))


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
    flags = tiny_flags(faces, run) + ["--condition", "colours"]
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
