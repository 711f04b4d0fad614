"""ACGAN avatars: recipes, determinism, colour control, morphs and walks, training."""

import json

import numpy as np
import pytest
import torch

from cartoon.acgan import LATEST, Recipe, avatars, morph, walk
from cartoon.acgan.cli import run_avatars
from cartoon.acgan.data import read_tags, split_tags
from cartoon.acgan.model import Discriminator, Generator
from cartoon.data import ANIME_TAGS
from cartoon.hub import load_model


@pytest.fixture(scope="module")
def tiny_generator():
    torch.manual_seed(0)
    return Generator(width=8, blocks=1).eval()


@pytest.fixture(scope="module")
def trained_generator():
    """The shipped generator: colour-control tests only mean something for trained weights."""
    return load_model("acgan", hub=False)


def pixels(images):
    return np.stack([np.asarray(i) for i in images])


def test_recipe_round_trip_and_defaults():
    recipe = Recipe.parse("acgan:v2;hair=blue;eyes=red;seed=7;n=16;trunc=0.8")
    assert recipe == Recipe("blue", "red", 7, 16, 0.8, version=2)
    assert Recipe.parse(str(recipe)) == recipe
    assert Recipe.parse(" acgan:v2 ; hair = Blue ;") == Recipe(hair="blue", version=2)
    assert Recipe(hair="blue").version == LATEST  # a recipe that names no version draws the newest
    older = Recipe.parse("acgan:v1;hair=blue;seed=7")  # a recipe of the first generator stays its own
    assert older == Recipe(hair="blue", seed=7, version=1) and str(older).startswith("acgan:v1;")
    assert older.face(0).version == 1


def test_a_recipe_draws_with_its_own_generator_version():
    from cartoon.acgan import load_generator

    old = load_model("acgan-v1", hub=False)
    faces, _ = avatars("acgan:v1;hair=blue;eyes=red;seed=7;n=4;trunc=0.8")
    assert np.array_equal(pixels(faces), pixels(avatars(Recipe("blue", "red", 7, 4, 0.8, version=1), old)[0]))
    assert load_generator(1).width != load_generator(2).width  # two different generators, not one twice
    with pytest.raises(ValueError, match="one generator"):
        morph("acgan:v1;seed=1", "acgan:v2;seed=2", frames=4)


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("hair=blue", "starts with"),
        ("acgan:v9;hair=blue", "starts with"),
        ("acgan:v1;hair=teal", "unknown hair colour"),
        ("acgan:v1;eyes=white", "unknown eye colour"),
        ("acgan:v1;n=0", "from 1 to 64"),
        ("acgan:v1;n=65", "from 1 to 64"),
        ("acgan:v1;seed=-3", "whole number"),
        ("acgan:v1;seed=1e3", "whole number"),
        ("acgan:v1;trunc=2.5", "from 0.0 to 2.0"),
        ("acgan:v1;trunc=inf", "finite"),
        ("acgan:v1;trunc=abc", "must be a number"),
        ("acgan:v1;colour=blue", "unknown recipe field"),
        ("acgan:v1;hair", "key=value"),
        ("acgan:v1;seed=1;seed=2", "twice"),
    ],
)
def test_bad_recipes_say_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        Recipe.parse(text)


def test_same_recipe_same_pixels_and_faces_reproduce_alone(tiny_generator):
    recipe = Recipe("random", "green", seed=11, n=6, trunc=0.7)
    first, own = avatars(recipe, tiny_generator)
    second, _ = avatars(str(recipe), tiny_generator)
    assert len(first) == 6 and first[0].size == (64, 64)
    assert np.array_equal(pixels(first), pixels(second))
    alone, _ = avatars(own[4], tiny_generator)  # one face's own recipe gives that face
    assert own[4].n == 1 and own[4].hair != "random" and own[4].seed == 15
    assert np.array_equal(pixels(alone)[0], pixels(first)[4])
    other, _ = avatars(Recipe("random", "green", seed=12, n=6, trunc=0.7), tiny_generator)
    assert not np.array_equal(pixels(other)[0], pixels(first)[0])  # faces of a grid differ


def test_hair_label_changes_the_hair_more_than_the_face(trained_generator):
    # Anime face crops: hair fills the top band and the sides; the middle-lower box is skin,
    # eyes and mouth. Eyes are held fixed, so the face box should change less than the hair.
    top, face = (slice(0, 14), slice(None)), (slice(30, 58), slice(20, 44))
    hair_change, face_change = [], []
    base, _ = avatars(Recipe("blonde", "blue", seed=0, n=16, trunc=0.7), trained_generator)
    for hair in ("black", "red", "green"):
        changed, _ = avatars(Recipe(hair, "blue", seed=0, n=16, trunc=0.7), trained_generator)
        diff = np.abs(pixels(changed).astype(float) - pixels(base).astype(float)).mean(-1)
        hair_change.append(diff[:, top[0], top[1]].mean())
        face_change.append(diff[:, face[0], face[1]].mean())
    assert np.mean(hair_change) > 1.5 * np.mean(face_change)


def test_morph_ends_on_both_faces_and_walk_loops(tiny_generator):
    start, end = Recipe("blue", "red", 3), Recipe("pink", "green", 9)
    frames = morph(start, end, frames=7, mode="slerp", generator=tiny_generator)
    assert len(frames) == 7
    assert np.array_equal(np.asarray(frames[0]), pixels(avatars(start, tiny_generator)[0])[0])
    assert np.array_equal(np.asarray(frames[-1]), pixels(avatars(end, tiny_generator)[0])[0])
    loop, stops = walk(seed=5, stops=3, frames=9, generator=tiny_generator)
    assert len(loop) == 9 and len(stops) == 3
    assert np.array_equal(np.asarray(loop[0]), pixels(avatars(stops[0], tiny_generator)[0])[0])
    assert np.array_equal(np.asarray(loop[3]), pixels(avatars(stops[1], tiny_generator)[0])[0])
    with pytest.raises(ValueError, match="from 2 to 120"):
        morph(start, end, frames=121, generator=tiny_generator)
    with pytest.raises(ValueError, match="slerp"):
        morph(start, end, frames=5, mode="cubic", generator=tiny_generator)


def test_cli_reports_bad_input_without_traceback(capsys, tmp_path):
    from argparse import Namespace

    args = Namespace(recipe=None, hair="teal", eyes="red", count=4, seed=1, trunc=1.0, version=2, scale=1, faces=None, output=str(tmp_path / "g.png"))
    assert run_avatars(args) == 2
    assert "unknown hair colour 'teal'" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()


def test_held_out_split_is_stratified_and_disjoint():
    rows = read_tags(ANIME_TAGS)
    train, held = split_tags(rows)
    assert not set(train) & set(held) and len(train) + len(held) == len(rows)
    pairs = {(h, e) for _, h, e in held}
    assert len(pairs) == 119 and len(held) == 1190
    assert split_tags(rows) == (train, held)


def test_models_shapes_and_save_load_round_trip(tmp_path, tiny_generator):
    noise = torch.randn(3, tiny_generator.noise_dim)
    hair, eyes = torch.tensor([0, 5, 11]), torch.tensor([9, 1, 0])
    with torch.no_grad():
        images = tiny_generator(noise, hair, eyes)
    assert images.shape == (3, 3, 64, 64) and images.abs().max() <= 1
    realness, hair_logits, eye_logits = Discriminator(width=8)(images)
    assert realness.shape == (3,) and hair_logits.shape == (3, 12) and eye_logits.shape == (3, 10)
    tiny_generator.save_pretrained(str(tmp_path / "g"))
    loaded = Generator.from_pretrained(str(tmp_path / "g")).eval()
    with torch.no_grad():
        assert torch.equal(loaded(noise, hair, eyes), images)


def test_colour_heads_judge_faces_without_the_cutout():
    from cartoon.acgan.train import cut_out, judge, translate

    torch.manual_seed(0)
    discriminator = Discriminator(width=4).eval()
    faces = torch.rand(3, 3, 64, 64) * 2 - 1
    torch.manual_seed(1)
    score, hair, eyes = judge(discriminator, faces)
    assert score.shape == (3,) and hair.shape == (3, 12) and eyes.shape == (3, 10)
    torch.manual_seed(1)  # the same random shifts and squares, one view at a time
    shifted = translate(faces)
    cut_score = discriminator(cut_out(shifted))[0]
    _, whole_hair, whole_eyes = discriminator(shifted)
    assert torch.allclose(score, cut_score, atol=1e-5)
    assert torch.allclose(hair, whole_hair, atol=1e-5) and torch.allclose(eyes, whole_eyes, atol=1e-5)
    assert not torch.allclose(eyes, discriminator(cut_out(shifted))[2], atol=1e-3)  # the cutout would have changed them


def test_short_training_lowers_classification_loss_and_resumes(tmp_path):
    from cartoon.acgan.train import parse_args, train

    common = ["--run-dir", str(tmp_path / "run"), "--limit", "300", "--batch-size", "16", "--width", "8", "--blocks", "1",
              "--d-width", "8", "--lr", "1e-3", "--log-every", "10", "--sample-every", "1000", "--save-every", "1000",
              "--snapshot-every", "1000", "--threads", "1", "--device", "cpu"]
    train(parse_args(common + ["--steps", "30"]))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["cls_real"] < log[0]["cls_real"]
    assert (tmp_path / "run" / "samples" / "step_000030.png").is_file()
    train(parse_args(common + ["--steps", "40", "--resume"]))
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30, 40]  # resumed at step 30, not from scratch


def test_mode_seeking_pairs_labels_and_penalises_repeated_faces():
    from cartoon.acgan.train import mode_seeking_loss, random_labels

    hair, eyes = random_labels(10, Generator(width=8, blocks=1), "cpu", paired=True)
    assert torch.equal(hair[:5], hair[5:]) and torch.equal(eyes[:5], eyes[5:])
    noise = torch.randn(10, 128)
    face = torch.rand(1, 3, 64, 64)
    repeated = face.expand(10, -1, -1, -1)
    varied = torch.rand(10, 3, 64, 64)
    assert mode_seeking_loss(repeated, noise) > 100 * mode_seeking_loss(varied, noise)


def test_mode_seeking_fine_tunes_a_run_exported_without_it(tmp_path):
    """How the shipped v2 was made: a plain run's export, continued with the term switched on."""
    from cartoon.acgan.train import export, parse_args, train
    from cartoon.training import Run

    tiny = ["--limit", "64", "--batch-size", "8", "--width", "8", "--blocks", "1", "--d-width", "4", "--log-every", "2",
            "--sample-every", "1000", "--save-every", "1000", "--snapshot-every", "1000", "--threads", "1", "--device", "cpu"]
    train(parse_args(["--run-dir", str(tmp_path / "plain"), "--steps", "2", "--mode-seeking", "0", *tiny]))
    export(parse_args(["--run-dir", str(tmp_path / "plain"), "--export", str(tmp_path / "shipped")]))
    assert all("mode_seeking" not in json.loads(line) for line in (tmp_path / "plain" / "log.jsonl").read_text().splitlines())
    train(parse_args(["--resume-from", str(tmp_path / "shipped"), "--run-dir", str(tmp_path / "arm"), "--steps", "6",
                      "--mode-seeking", "1"]))
    assert Run(tmp_path / "arm").read_checkpoint()["args"]["mode_seeking"] == 1
    log = [json.loads(line) for line in (tmp_path / "arm" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [4, 6]
    assert all(record["mode_seeking"] > 0 for record in log)


def test_a_bf16_generator_draws_near_fp32_pixels_and_keeps_its_own_exactly(tmp_path):
    from cartoon.runtime import cpu_has_bf16

    torch.manual_seed(0)
    full = Generator(width=8, blocks=2).eval()
    low = Generator(width=8, blocks=2, render_precision="bf16").eval()
    low.load_state_dict(full.state_dict())
    recipe = Recipe("blue", "red", 7, 6, 0.8)
    full_faces, low_faces = pixels(avatars(recipe, full)[0]), pixels(avatars(recipe, low)[0])
    difference = np.abs(full_faces.astype(int) - low_faces.astype(int))
    if cpu_has_bf16():
        assert 0 < difference.max() <= 12 and difference.mean() < 1.5  # rounding, not another face
    else:
        assert difference.max() == 0  # no native bf16: drawn in fp32
    alone = pixels(avatars(recipe.face(3), low)[0])
    assert np.array_equal(alone[0], low_faces[3])  # a face's own recipe reproduces it in bf16 too
    low.save_pretrained(str(tmp_path / "g"))
    assert Generator.from_pretrained(str(tmp_path / "g")).render_precision == "bf16"
    with pytest.raises(ValueError, match="render_precision"):
        Generator(width=8, blocks=1, render_precision="fp16")
