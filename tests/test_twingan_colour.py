"""TwinGAN's colour control: conditional normalisation, requests by name, the cached portrait tags, training with it."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon.__main__ import main as cartoon_main
from cartoon.acgan.evaluate import AttributeClassifier
from cartoon.twingan import anime_photo, colours_offered, get_model, to_anime
from cartoon.twingan import colour as colour_module
from cartoon.twingan.colour import (COLOUR_CLASSES, EYE_COLOURS, HAIR_COLOURS, KEEP, ColourJudge, colour_loss, colour_request,
                                    face_region, keep_index, portrait_tags, random_colours, tags_cache)
from cartoon.twingan.data import face_dataset
from cartoon.twingan.evaluate import colour_control
from cartoon.twingan.model import ANIME, HUMAN, TwinGAN
from cartoon.twingan.train import main as train_main


def tiny(colour_classes=None, seed=0) -> TwinGAN:
    torch.manual_seed(seed)
    return TwinGAN(32, 8, 32, colour_classes=colour_classes).eval()


def with_random_offsets(model: TwinGAN) -> TwinGAN:
    """The colour offsets as if trained: random, the "keep" rows left at zero."""
    torch.manual_seed(1)
    for name, weight in model.named_parameters():
        if ".colours." in name:
            with torch.no_grad():
                weight[:-1].normal_(0, 0.5)
    return model


def faces(count=2, side=32) -> torch.Tensor:
    torch.manual_seed(2)
    return torch.rand(count, 3, side, side) * 2 - 1


def write_faces(folder, count, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((40, 40)).save(folder / f"{i}.png")
    return sorted(folder.iterdir())


def test_a_conditioned_model_starts_as_the_unconditioned_one():
    plain, conditioned = tiny(), tiny(COLOUR_CLASSES)
    missing, unexpected = conditioned.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".colours." in name for name in missing)
    x, asked = faces(), colour_request("green", "blue")
    for domain in (ANIME, HUMAN, 0.5):
        assert torch.equal(conditioned(x, domain, colours=asked), plain(x, domain))


def test_colour_requests_change_the_anime_side_only():
    model, x = with_random_offsets(tiny(COLOUR_CLASSES)), faces()
    green, red = model(x, ANIME, colours=colour_request("green")), model(x, ANIME, colours=colour_request("red"))
    assert (green - red).abs().max() > 1e-3
    assert not torch.allclose(model(x, ANIME, colours=colour_request(eyes="blue")), model(x, ANIME, colours=colour_request(eyes="red")))
    # "keep" is no offset at all: the same as asking for nothing
    assert torch.equal(model(x, ANIME, colours=colour_request(KEEP, KEEP)), model(x, ANIME))
    # the human side takes no colours
    assert torch.equal(model(x, HUMAN, colours=colour_request("green")), model(x, HUMAN))
    # one request per image in a batch, as training asks
    both = model(x, ANIME, colours=(torch.tensor([HAIR_COLOURS.index("green"), HAIR_COLOURS.index("red")]), torch.full((2,), keep_index("eyes"))))
    assert torch.allclose(both[0], green[0], atol=1e-5) and torch.allclose(both[1], red[1], atol=1e-5)


def test_a_saved_conditioned_model_loads_conditioned(tmp_path):
    model = with_random_offsets(tiny(COLOUR_CLASSES))
    model.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["colour_classes"] == list(COLOUR_CLASSES)
    loaded = TwinGAN.from_pretrained(str(tmp_path / "saved")).eval()
    assert loaded.colour_classes == COLOUR_CLASSES
    asked = colour_request("pink", "yellow")
    assert torch.equal(loaded(faces(), ANIME, colours=asked), model(faces(), ANIME, colours=asked))
    # and an unconditioned one without, as the shipped weights are
    tiny().save_pretrained(tmp_path / "plain")
    assert TwinGAN.from_pretrained(str(tmp_path / "plain")).colour_classes is None


def test_colour_requests_by_name_fail_clearly():
    image = Image.new("RGB", (40, 40), (200, 120, 90))
    conditioned = with_random_offsets(tiny(COLOUR_CLASSES))
    assert to_anime(image, model=conditioned, hair="green", eyes="keep").size == (32, 32)
    with pytest.raises(ValueError, match="unknown hair colour 'teal'.*aqua"):
        to_anime(image, model=conditioned, hair="teal")
    with pytest.raises(ValueError, match="unknown eyes colour 'grey'"):
        to_anime(image, model=conditioned, eyes="grey")
    with pytest.raises(ValueError, match="not conditioned on colour"):
        to_anime(image, model=tiny(), hair="green")
    with pytest.raises(ValueError, match="anime side"):
        to_anime(image, model=conditioned, reverse=True, eyes="red")
    with pytest.raises(ValueError, match="not conditioned on colour"):
        anime_photo(image, model=tiny(), mode="whole", eyes="red")
    # keeping both asks nothing of any weights
    assert to_anime(image, model=tiny(), hair=KEEP, eyes=KEEP).size == (32, 32)


def test_the_cli_and_tab_offer_colours_only_for_weights_that_take_them(tmp_path, monkeypatch):
    tiny().save_pretrained(tmp_path / "plain")
    with_random_offsets(tiny(COLOUR_CLASSES)).save_pretrained(tmp_path / "conditioned")
    (tmp_path / "in").mkdir()
    Image.new("RGB", (48, 40), (200, 120, 90)).save(tmp_path / "in" / "face.png")
    run = ["anime", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--mode", "whole"]
    try:
        monkeypatch.setenv("CARTOON_WEIGHTS_TWINGAN", str(tmp_path / "plain"))
        get_model.cache_clear()
        assert not colours_offered()
        with pytest.raises(SystemExit, match="not conditioned on colour"):
            cartoon_main(run + ["--hair", "green"])
        with pytest.raises(SystemExit):  # not a colour: argparse names the choices
            cartoon_main(run + ["--eyes", "grey"])
        monkeypatch.setenv("CARTOON_WEIGHTS_TWINGAN", str(tmp_path / "conditioned"))
        get_model.cache_clear()
        assert colours_offered()
        assert cartoon_main(run + ["--hair", "green", "--eyes", "keep"]) == 0
        assert len(list((tmp_path / "out").iterdir())) == 1
    finally:
        get_model.cache_clear()


def save_classifier(folder, seed):
    torch.manual_seed(seed)
    AttributeClassifier(width=2).save_pretrained(folder)


def test_portrait_tags_are_cached_per_classifier_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    files = write_faces(tmp_path / "anime", 3, 0)
    read = []
    tag_images = colour_module.tag_images
    monkeypatch.setattr(colour_module, "tag_images", lambda judge, missing: read.append(len(missing)) or tag_images(judge, missing))
    save_classifier(tmp_path / "judge", 0)
    first = portrait_tags(files, tmp_path / "judge")
    assert list(first) == files and all(0 <= t.hair < 12 and 0 <= t.eyes < 10 and 0 < t.hair_confidence <= 1 for t in first.values())
    assert portrait_tags(files, tmp_path / "judge") == first and read == [3]  # read once, then from the cache
    assert portrait_tags(files + write_faces(tmp_path / "more", 1, 1), tmp_path / "judge") and read == [3, 1]  # only the new one
    old_cache = tags_cache(tmp_path / "judge")
    save_classifier(tmp_path / "judge", 1)  # new weights in the same folder: read again, into a cache of their own
    assert tags_cache(tmp_path / "judge") != old_cache
    second = portrait_tags(files, tmp_path / "judge")
    assert read == [3, 1, 3] and old_cache.is_file() and tags_cache(tmp_path / "judge").is_file()
    assert [t.hair_confidence for t in second.values()] != [t.hair_confidence for t in first.values()]


def test_tagged_portraits_give_doubtful_tags_as_keep(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    files = write_faces(tmp_path / "anime", 4, 0)
    tags = portrait_tags(files)  # the project's classifier, as training reads them
    middle = sorted(t.hair_confidence for t in tags.values())[2]
    dataset = face_dataset([tmp_path / "anime"], 32, tag_confidence=middle)
    items = [dataset[i] for i in range(4)]
    assert all(image.shape == (3, 32, 32) for image, _, _ in items)
    assert [int(hair) for _, hair, _ in items] == [tags[f].hair if tags[f].hair_confidence >= middle else keep_index("hair") for f in files]


def test_colour_loss_judges_only_what_was_asked():
    torch.manual_seed(0)
    judge = ColourJudge(AttributeClassifier(width=2))
    images = faces(4, 64)
    assert face_region(images).shape == (4, 3, 64, 64)
    asked = random_colours(4, keep_share=0.0)
    loss = colour_loss(judge, images, asked)
    assert torch.isfinite(loss) and loss > 0
    kept = (torch.full((4,), keep_index("hair")), torch.full((4,), keep_index("eyes")))
    assert colour_loss(judge, images, kept) == 0  # nothing asked: nothing judged, and no NaN from an empty mean
    assert all(((c >= 0) & (c <= k)).all() for c, k in zip(random_colours(64), COLOUR_CLASSES))


def test_colour_control_measures_every_colour():
    model = with_random_offsets(tiny(COLOUR_CLASSES))
    torch.manual_seed(0)
    measured = colour_control(model, faces(3), ColourJudge(AttributeClassifier(width=2)))
    assert measured["photos"] == 3
    assert list(measured["hair"]["per_colour"]) == list(HAIR_COLOURS) and list(measured["eyes"]["per_colour"]) == list(EYE_COLOURS)
    assert all(0 <= measured[k]["as_asked"] <= 1 and 0 <= measured[k]["keep_reads_as_photo"] <= 1 for k in ("hair", "eyes"))


def test_training_with_colour_condition_runs_and_exports_conditioned(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        write_faces(tmp_path / "photos", 4, 0)
        write_faces(tmp_path / "anime", 4, 1)
        run = tmp_path / "run"
        common = ["--resolution", "32", "--width", "8", "--max-width", "32", "--batch-size", "2", "--workers", "0", "--threads", "1",
                  "--log-every", "1", "--sample-every", "2", "--save-every", "2", "--run-dir", str(run),
                  "--photos", str(tmp_path / "photos"), "--anime", str(tmp_path / "anime")]
        train_main(common + ["--steps", "2", "--colour-condition", "--colour-weight", "2", "--tag-confidence", "0"])
        train_main(common + ["--steps", "3", "--resume"])  # a resume stays conditioned without being told
        records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records] == [1, 2, 3]
        assert all(np.isfinite(r["loss_colour"]) and r["loss_colour"] > 0 for r in records)
        train_main(["--run-dir", str(run), "--export", str(tmp_path / "export"), "--norm-batches", "2", "--threads", "1"])
        exported = TwinGAN.from_pretrained(str(tmp_path / "export"))
        assert exported.colour_classes == COLOUR_CLASSES
        assert any(".colours." in name and weight[:-1].abs().sum() > 0 for name, weight in exported.named_parameters())
    finally:
        torch.set_num_threads(threads)
