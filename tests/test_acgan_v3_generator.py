"""Avatars v3's colour-conditioned generator and its recipes, and the unconditional weights that must keep their pixels."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.utils import save_image

from cartoon.acgan import Recipe, avatars, morph, recipe_inputs, render, walk
from cartoon.acgan.evaluate import load_avatar_generator
from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.hub import WEIGHTS_DIR, load_model
from cartoon.stylegan.critic import Discriminator
from cartoon.stylegan.model import CONDITION_PARTS, Generator
from cartoon.stylegan.train import GRID_SIDE, build_models, grid_faces, parse_args
from cartoon.training import Run

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
