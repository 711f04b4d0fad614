"""The Latent Lab (issue 42): recipes, directions, feature-map views and edits, animations, the CLI.

Tiny random generators and a tiny colour classifier stand in for trained weights: what is tested
is the plumbing (exact pixels, caches, errors), which does not depend on training.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon.__main__ import main
from cartoon.acgan.evaluate import AttributeClassifier
from cartoon.stylegan import directions, lab
from cartoon.stylegan.edits import Edit
from cartoon.stylegan.lab import Recipe, animate, feature_overlay, interpolate, rank_channels, render
from cartoon.stylegan.model import Generator

pytestmark = pytest.mark.usefixtures("one_thread")
TAG_SAMPLES = 24
EYE_SAMPLES = 16


def tiny_generator(seed=0) -> Generator:
    torch.manual_seed(seed)
    generator = Generator(resolution=16, latent_dim=16, mapping_layers=2, max_channels=8, channel_base=64).eval()
    with torch.no_grad():
        generator.w_avg.copy_(torch.randn(16))  # a mean w that is not the zero vector
        for block in generator.blocks:
            for conv in block.convs:
                conv.noise_strength.fill_(0.2)  # stored noise shows in the pixels
    return generator


@pytest.fixture
def generator(tmp_path, monkeypatch):
    """A tiny generator installed as the registered `stylegan` weights, with a private cache."""
    model = tiny_generator()
    model.save_pretrained(str(tmp_path / "weights"))
    monkeypatch.setenv("CARTOON_WEIGHTS_STYLEGAN", str(tmp_path / "weights"))
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(1)
    classifier = AttributeClassifier(width=2).eval()
    monkeypatch.setattr(directions, "default_classifier", lambda: classifier)
    monkeypatch.setattr(directions, "TAG_SAMPLES", TAG_SAMPLES)
    monkeypatch.setattr(directions, "EYE_SAMPLES", EYE_SAMPLES)
    directions._loaded.clear()
    lab.load_generator.cache_clear()
    yield lab.load_generator(lab.LATEST)
    lab.load_generator.cache_clear()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def same(a: Image.Image, b: Image.Image) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


def mouth_edit(amount=3.0, block=2) -> Edit:
    return Edit.painted(block, [0, 3], [(5, 3), (5, 4)], side=8, weights=[1.0, -0.5], amount=amount)


def test_recipe_text_round_trips_and_draws_the_same_pixels(generator):
    recipe = Recipe(7, 0.7, {"sefa1": -1.5}, mix=9, cross=3, edit=mouth_edit())
    again = Recipe.parse(str(recipe))
    assert again == recipe
    assert same(render(again), render(recipe))
    assert not same(render(recipe), render(Recipe(7, 0.7)))
    precise = Recipe(7, 0.123456789, {"sefa0": 1 / 3})
    assert Recipe.parse(str(precise)) == precise and "psi=0.123456789" in str(precise)


def test_w_interpolation_ends_are_the_recipes(generator):
    start, end = Recipe(1, 0.7, {"sefa0": 1.5}), Recipe(2, 1.0, mix=5, cross=2, edit=mouth_edit())
    for mode in ("lerp", "slerp"):
        frames = interpolate(start, end, 5, mode)
        assert len(frames) == 5
        assert same(frames[0], render(start)) and same(frames[-1], render(end))
        assert not same(frames[2], frames[0]) and not same(frames[2], frames[-1])


def test_truncation_zero_gives_the_mean_face(generator):
    mean_face = lab.draw(generator, generator.styles(generator.w_avg[None]))
    assert same(render(Recipe(1, 0.0)), mean_face)
    assert same(render(Recipe(2, 0.0)), mean_face)
    assert not same(render(Recipe(1, 1.0)), mean_face)


def test_an_edit_of_amount_zero_changes_nothing(generator):
    assert same(render(Recipe(3, edit=mouth_edit(amount=0.0))), render(Recipe(3)))
    assert same(animate(Recipe(3), mouth_edit(), frames=4)[0], render(Recipe(3)))


def test_a_masked_edit_changes_its_region_most(generator):
    # block 2 reads 8×8 maps of a 16×16 face: the top-left 4×4 cells are the face's top-left quarter
    edit = Edit.painted(2, range(4), [(r, c) for r in range(4) for c in range(4)], side=8, amount=2.0)
    change = np.abs(pixels(render(Recipe(4, edit=edit))) - pixels(render(Recipe(4)))).mean(2)
    inside, far = change[:8, :8].mean(), change[8:, 8:].mean()
    assert inside > 0 and inside > 3 * far


def test_an_edit_applies_to_any_seed(generator):
    edit = mouth_edit()
    for seed in (10, 11, 12):
        assert not same(render(Recipe(seed, edit=edit)), render(Recipe(seed)))


def test_edit_json_round_trips(tmp_path, generator):
    edit = mouth_edit(amount=-2.5)
    loaded = Edit.load(edit.save(tmp_path / "mouth.json"), generator)
    assert loaded == edit
    assert Edit.from_text(edit.to_text()) == edit
    assert same(render(Recipe(5, edit=loaded)), render(Recipe(5, edit=edit)))


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be an object"),
        ('{"block": 1, "channels": [0], "weights": [1]}', "missing keys \\['mask'\\]"),
        ('{"block": 1, "channels": [0], "weights": [1], "mask": [[1]], "colour": 3}', "unknown keys \\['colour'\\]"),
        ('{"block": 1, "channels": [0, 1], "weights": [1], "mask": [[1]]}', "one weight per channel"),
        ('{"block": 1, "channels": [0], "weights": [NaN], "mask": [[1]]}', "weight must be a finite number"),
        ('{"block": -1, "channels": [0], "weights": [1], "mask": [[1]]}', "block must be a whole number"),
        ('{"block": 1, "channels": [0], "weights": [1], "mask": [[1, 0]]}', "must be square"),
        ('{"block": 1, "channels": [0], "weights": [1], "mask": [[2]]}', "from 0 to 1"),
        ('{"block": 1, "channels": [0], "weights": [1], "mask": [[1]], "amount": 1e9}', "amount must be from"),
    ],
)
def test_malformed_edit_json_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        Edit.from_json(text)


def test_an_edit_that_does_not_fit_the_generator_says_why(tmp_path, generator):
    for edit, message in [
        (Edit.painted(7, [0], [(0, 0)], side=4), "unknown block 7"),
        (Edit.painted(2, [99], [(0, 0)], side=8), "unknown channel 99"),
        (Edit.painted(2, [0], [(0, 0)], side=4), "block 2's input is 8×8"),
    ]:
        with pytest.raises(ValueError, match=message):
            render(Recipe(1, edit=edit))
    with pytest.raises(ValueError, match="unknown channel"):
        Edit.load(Edit.painted(1, [50], [(0, 0)], side=4).save(tmp_path / "e.json"), generator)


@pytest.mark.parametrize(
    "text, message",
    [
        ("stylegan:v1;psi=3", "psi"),
        ("stylegan:v1;dir=hair-blue", "name:amount"),
        ("stylegan:v1;dir=hair-blue:inf", "finite"),
        ("stylegan:v1;dir=hair-blue:50", "amount must be from"),
        ("stylegan:v1;mix=3", "both mix"),
        ("stylegan:v1;edit=@@@", "not an encoded edit"),
        ("stylegan:v1;colour=3", "unknown recipe field"),
        ("acgan:v2;seed=1", "starts with"),
    ],
)
def test_malformed_recipes_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        Recipe.parse(text)


def test_unknown_direction_and_crossover_are_refused(generator):
    with pytest.raises(ValueError, match="unknown direction 'hair-plaid'"):
        render(Recipe(1, directions={"hair-plaid": 1.0}))
    with pytest.raises(ValueError, match="crossover from 0 to 6"):
        render(Recipe(1, mix=2, cross=11))


def test_directions_are_recomputed_when_the_weights_change(generator, monkeypatch):
    first = directions.direction_vectors(generator, ["sefa0"])["sefa0"]
    tags = directions.directions(generator, "tag")
    assert tags and all(name.startswith(("hair-", "eyes-")) for name in tags)
    files = set(directions.directions_dir().iterdir())
    assert len(files) == 2

    style = generator.blocks[1].convs[0].conv.style.weight
    kept = style.detach().clone()
    with torch.no_grad():
        style.mul_(3)
    changed = directions.direction_vectors(generator, ["sefa0"])["sefa0"]
    directions.directions(generator, "tag")
    assert not torch.allclose(changed, first)
    assert len(set(directions.directions_dir().iterdir())) == 4

    with torch.no_grad():
        style.copy_(kept)
    directions._loaded.clear()
    monkeypatch.setattr(directions, "sefa_directions", lambda *a, **k: pytest.fail("recomputed cached directions"))
    assert torch.equal(directions.direction_vectors(generator, ["sefa0"])["sefa0"], first)


def test_shipped_directions_are_read_first(generator, tmp_path, monkeypatch):
    vectors = directions.direction_vectors(generator, ["sefa0"])
    assert directions.main(["--ship", str(tmp_path / "weights"), "--samples", str(TAG_SAMPLES)]) == 0
    shipped = sorted(p.name for p in (tmp_path / "weights" / "directions").iterdir())
    assert shipped == sorted(p.name for p in directions.directions_dir().iterdir())
    for cached in directions.directions_dir().iterdir():
        cached.unlink()
    directions._loaded.clear()
    monkeypatch.setattr(directions, "sefa_directions", lambda *a, **k: pytest.fail("computed shipped directions"))
    assert torch.equal(directions.direction_vectors(generator, ["sefa0"])["sefa0"], vectors["sefa0"])


def test_a_colour_direction_comes_from_the_faces_read_as_it(generator):
    found = directions.tag_directions(generator, directions.default_classifier(), samples=TAG_SAMPLES)
    stream = torch.Generator().manual_seed(directions.TAG_SEED)
    w = generator.mapping(torch.randn(TAG_SAMPLES, generator.latent_dim, generator=stream)).double()
    hair, _ = directions.read_colours(directions.default_classifier(), directions.faces_of(generator, w.float()))
    hair_found = {name: v for name, v in found.items() if name.startswith("hair-")}
    assert hair_found
    for name, vector in hair_found.items():
        expected = directions.whitened_direction(w, hair == directions.HAIR_COLOURS.index(name[5:])).float()
        assert torch.allclose(vector, expected, atol=1e-4)


def test_whitening_ignores_a_wide_axis_that_does_not_tell_the_colour():
    # axis 0 varies 10× more than the rest and says nothing about the tag; axis 1 decides it.
    # The raw mean difference picks up axis 0's sampling noise; the whitened direction hardly does.
    ws = torch.randn(400, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ws[:, 0] *= 10
    chosen = ws[:, 1] > 1
    raw = ws[chosen].mean(0) - ws.mean(0)
    whitened = directions.whitened_direction(ws, chosen)
    along_tag = lambda v: float(v[1].abs() / v.norm())  # noqa: E731
    assert along_tag(whitened) > max(along_tag(raw), 0.9)
    # amount 1 moves the separating score as far as the raw difference does
    separating = torch.linalg.solve(torch.cov(ws.t()) + torch.cov(ws.t()).diagonal().mean() * torch.eye(6, dtype=ws.dtype), raw)
    assert torch.allclose(whitened @ separating, raw @ separating)


def test_direction_check_reports_shares(generator):
    tag = next(iter(directions.directions(generator, "tag")))  # a colour the random classifier reads at all
    report = directions.check_directions(generator, directions.default_classifier(), tags=(tag,), faces=4, samples=TAG_SAMPLES)
    assert set(report) == {tag} and 0 <= report[tag]["before"] <= 1 and 0 <= report[tag]["after"] <= 1


def test_an_eye_direction_raises_its_logit_and_holds_the_hair(generator):
    """To first order, over the faces it was found on: its logit rises by EYE_LOGIT_STEP per unit
    amount and no hair logit moves (a random classifier is too far from linear to test a real step)."""
    found = directions.eye_directions(generator, directions.default_classifier())
    assert set(found) == {f"eyes-{c}" for c in directions.EYE_COLOURS}
    z = torch.randn(EYE_SAMPLES, generator.latent_dim, generator=torch.Generator().manual_seed(directions.TAG_SEED))
    ws = generator.styles(generator.mapping(z)).detach().requires_grad_(True)
    hair, eyes = directions.colour_logits(directions.default_classifier(), generator.synthesis(ws, noise="fixed"))
    hair, eyes = ((logits - logits.mean(1, keepdim=True)).mean(0) for logits in (hair, eyes))
    slope = lambda logit, step: float((torch.autograd.grad(logit, ws, retain_graph=True)[0] * step).sum())  # noqa: E731
    for name in ("eyes-blue", "eyes-green"):
        step = found[name]
        assert step.shape == (generator.num_ws, generator.latent_dim)  # one row per style
        assert slope(eyes[directions.EYE_COLOURS.index(name[5:])], step) == pytest.approx(directions.EYE_LOGIT_STEP, rel=1e-3)
        assert max(abs(slope(logit, step)) for logit in hair) < 1e-3 * directions.EYE_LOGIT_STEP


def test_v1_recipes_keep_the_whitened_eye_directions(generator):
    tags = directions.directions(generator, "tag")
    name = next(n for n in tags if n.startswith("eyes-"))  # an eye colour the random classifier reads at all
    eyes = directions.directions(generator, "eyes")
    ws = generator.styles(lab.mapped(generator, 3, 0.7))
    old, new = (render(Recipe(3, 0.7, {name: 1.5}, version=v)) for v in (1, 2))
    assert same(old, lab.draw(generator, ws + 1.5 * tags[name]))
    assert same(new, lab.draw(generator, ws + 1.5 * eyes[name]))
    assert not same(old, new)
    hair = next(n for n in tags if n.startswith("hair-"))  # hair directions are the same in both versions
    assert same(*(render(Recipe(3, 0.7, {hair: 1.5}, version=v)) for v in (1, 2)))


def test_feature_overlay_and_channel_ranking(generator):
    recipe = Recipe(6, 0.8)
    view = feature_overlay(recipe, 2, 1)
    assert view.size == (lab.OVERLAY_SIDE, lab.OVERLAY_SIDE)
    ranked = rank_channels(recipe, 2, (3, 4))
    _, maps = lab.feature_maps(recipe, 2)
    assert [c for c, _ in ranked] == maps[:, 3, 4].argsort(descending=True).tolist()
    assert lab.cell_at(255, 0, 8) == (0, 7)
    with pytest.raises(ValueError, match="unknown channel 8"):
        feature_overlay(recipe, 2, 8)
    with pytest.raises(ValueError, match="outside block 2's 8×8"):
        rank_channels(recipe, 2, (8, 0))


def test_animation_sweeps_the_edit_and_loops(generator):
    frames = animate(Recipe(8), mouth_edit(amount=4.0), frames=6)
    assert len(frames) == 6
    assert same(frames[0], render(Recipe(8)))
    assert same(frames[3], render(Recipe(8, edit=mouth_edit(amount=4.0))))  # the peak is the full amount
    assert np.abs(pixels(frames[1]) - pixels(frames[5])).max() <= 1  # eased out as it was eased in


def test_cli_png_grid_and_gif(tmp_path, generator, capsys):
    png = tmp_path / "faces.png"
    assert main(["lab", "--seed", "3", "-n", "4", "--truncation", "0.7", "--direction", "sefa2:-1", "--scale", "2", "-o", str(png)]) == 0
    assert Image.open(png).size == (2 * (2 * 16) + 2 * 2, 2 * (2 * 16) + 2 * 2)  # 2×2 faces, a 2-pixel gap, ×2
    assert "stylegan:v2;seed=3;psi=0.7;dir=sefa2:-1" in capsys.readouterr().out

    edit = mouth_edit().save(tmp_path / "mouth.json")
    gif = tmp_path / "talk.gif"
    assert main(["lab", "--seed", "3", "--edit", f"{edit}:5", "--frames", "6", "--scale", "1", "-o", str(gif)]) == 0
    animation = Image.open(gif)
    assert animation.n_frames == 6 and animation.size == (16, 16)


def test_cli_direction_sheet(tmp_path, generator):
    sheet = tmp_path / "sefa.png"
    assert main(["lab", "--seed", "2", "--sheet", "sefa0,sefa1", "--scale", "1", "-o", str(sheet)]) == 0
    image = pixels(Image.open(sheet))
    assert image.shape[:2] == (2 * 16 + 2, 5 * 16 + 4 * 2)  # a row per direction, a column per step
    middle = image[:16, 2 * 18:2 * 18 + 16]  # step 0: the face itself
    assert np.array_equal(middle, pixels(render(Recipe(2, directions={"sefa0": 0.0}))))
    assert not np.array_equal(image[:16, :16], middle)


def test_cli_bad_input_is_a_message(tmp_path, generator, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"block": 1, "channels": [0], "weights": [1], "mask": [[1, 1]]}')
    for argv, message in [
        (["lab", "-o", str(tmp_path / "x.jpg")], "must end in"),
        (["lab", "--edit", str(bad), "-o", str(tmp_path / "x.gif")], "must be square"),
        (["lab", "--direction", "hair=plaid", "-o", str(tmp_path / "x.png")], "unknown direction"),
        (["lab", "-o", str(tmp_path / "x.gif")], "animates an --edit"),
    ]:
        assert main(argv) == 2
        assert message in capsys.readouterr().err
