"""The white-box look measures: gradient figures, bootstrap intervals, the cartoon probe, and the whole evaluation."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from cartoon import data
from cartoon.whitebox import evaluate, probe as cartoon_probe

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = cartoon_probe.ProbeSettings(cartoons_per_folder=4, photos_per_folder=4)


def noisy_photo(seed=0) -> np.ndarray:
    """A photo-like image: a soft shading gradient with sensor-like noise everywhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256]
    shading = 60 + 0.4 * x + 0.2 * y
    return np.clip(shading[..., None] + rng.normal(0, 4, (256, 256, 3)), 0, 255).astype(np.uint8)


def inked_cartoon() -> np.ndarray:
    """Flat fills with dark 2-pixel outlines every 16 pixels."""
    pixels = np.full((256, 256, 3), (230, 190, 150), np.uint8)
    pixels[128:, :] = (120, 160, 220)
    for start in range(0, 256, 16):
        pixels[start : start + 2, :] = 20
        pixels[:, start : start + 2] = 20
    return pixels


def test_gradient_is_the_forward_difference_magnitude_of_luminance():
    step = np.zeros((256, 256, 3), np.uint8)
    step[:, 100:] = 100
    gradient = evaluate.luminance_gradient(Image.fromarray(step))
    assert gradient.shape == (255, 255)
    assert np.allclose(gradient[:, 99], 100) and np.count_nonzero(gradient) == 255  # one column, at the step
    green = np.zeros((256, 256, 3), np.uint8)
    green[100:, :, 1] = 100
    assert np.allclose(evaluate.luminance_gradient(Image.fromarray(green))[99], 58.7)  # only luma's share of green counts
    small = Image.fromarray(step).resize((200, 200), Image.NEAREST)
    assert evaluate.luminance_gradient(small).shape == (255, 255)  # every image is measured at 256²


def test_a_cartoon_is_flat_with_strong_lines_and_a_blur_is_flat_without_them():
    photo, cartoon = noisy_photo(), inked_cartoon()
    figures = {}
    for name, pixels in {"photo": photo, "blurred photo": cv2.GaussianBlur(photo, (0, 0), 2),
                         "cartoon": cartoon, "blurred cartoon": cv2.GaussianBlur(cartoon, (0, 0), 2)}.items():
        gradient = evaluate.luminance_gradient(Image.fromarray(pixels))
        figures[name] = evaluate.flat_share(gradient), evaluate.edge_strength(gradient)
    assert figures["photo"][0] < 0.2 and figures["cartoon"][0] > 0.7
    assert figures["cartoon"][1] > 5 * figures["photo"][1]
    # blurring the photo flattens it and weakens its strongest gradients; blurring the cartoon softens its lines
    assert figures["blurred photo"][0] > 2 * figures["photo"][0] and figures["blurred photo"][1] < figures["photo"][1]
    assert figures["blurred cartoon"][1] < 0.5 * figures["cartoon"][1]


def record(flat, edge, p_cartoon, landmark=0.03):
    return {"groups": {"dataset": "selfie2anime", "gender": "female", "age": data.age_band(30)},
            "photo_flat": 0.2, "cartoon_flat": flat, "photo_edge": 10.0, "cartoon_edge": edge,
            "landmark_distance": landmark, "face_kept": 1.0, "p_cartoon": p_cartoon, "read_as_cartoon": float(p_cartoon > 0.5)}


def test_intervals_bracket_the_figures_and_targets_are_checked_per_row():
    rng = np.random.default_rng(0)
    records = [record(0.3 + 0.1 * rng.random(), 15 + 10 * rng.random(), rng.random()) for _ in range(60)]
    row = evaluate.summarise(records)["selfie2anime"]
    assert np.isclose(row["edge_ratio"], sum(r["cartoon_edge"] for r in records) / (10.0 * 60))  # ratio of means
    for key in ("flat_ratio", "edge_ratio", "read_as_cartoon"):
        low, high = row["interval_90"][key]
        assert low < row[key] < high
    assert np.allclose(row["interval_90"]["landmark_distance"], 0.03)  # every photo alike: nothing to resample
    assert row["targets_missed"] == ["probe"]  # edges ~2×, flat ~1.75×, landmarks 0.03, faces all kept

    blurred = evaluate.summarise([record(0.5, 6.0, 0.1, landmark=0.08) for _ in range(5)])["all"]
    assert blurred["targets_missed"] == ["edge", "probe", "landmarks"]
    assert "missed: edge, probe, landmarks" in evaluate.table({"all": blurred})


def test_skin_figures_are_summarised_per_race_without_a_target():
    def utkface(race, lightening):
        groups = {"dataset": "UTKFace", "gender": "male", "age": data.age_band(30), "race": race}
        return record(0.5, 20.0, 0.9) | {"groups": groups, "skin_shift": abs(lightening) + 1, "skin_lightening": lightening}

    records = [utkface("White", 1.0), utkface("White", -1.0), utkface("Black", 12.0), utkface("Black", 14.0)]
    records.append(record(0.5, 20.0, 0.9))  # a selfie2anime photo: no race, and no skin reading
    summary = evaluate.summarise(records)
    assert set(evaluate.RACE_GROUPS) & set(summary) == {"UTKFace White", "UTKFace Black"}  # rows without photos are left out
    black, white = summary["UTKFace Black"], summary["UTKFace White"]
    assert black["photos"] == 2 and black["skin_lightening"] == 13.0 and black["skin_shift"] == 14.0
    assert white["skin_lightening"] == 0.0 and summary["all"]["skin_lightening"] == 6.5  # the selfie has none to count
    assert 12.0 <= black["interval_90"]["skin_lightening"][0] <= black["interval_90"]["skin_lightening"][1] <= 14.0
    assert black["targets_missed"] == white["targets_missed"] == []  # a pinked face misses nothing: these have no target
    lines = evaluate.table(summary).splitlines()
    assert "skin ΔE" in lines[0] and "ΔL*" in lines[0]
    assert next(line for line in lines if line.startswith("UTKFace Black")).endswith("14.0 +13.0     met")


def test_probe_never_trains_on_the_photos_the_evaluation_cartoonizes():
    files = cartoon_probe.training_images(cartoon_probe.ProbeSettings())
    evaluated = {path for path, _ in evaluate.held_out_photos()}
    photos = {path for path, kind in files if kind == cartoon_probe.PHOTO}
    cartoons = {path for path, kind in files if kind == cartoon_probe.CARTOON}
    assert len(photos) == 400 and not photos & evaluated
    assert cartoons == set(data.split(data.CARTOONSET)[1]) | set(data.split(data.SELFIE_ANIME)[1])


@pytest.fixture(scope="module")
def probe_cache(tmp_path_factory):
    """A tiny probe, trained once into a cache of its own for the tests that need one."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cartoon_probe, "cache_dir", lambda: folder)
        yield cartoon_probe.trained_probe(TINY, progress=None), folder


def unseen_images():
    """Cartoons and photos outside the tiny probe's training, with the photos' smoothed copies."""
    cartoons = data.split(data.CARTOONSET)[1][-3:] + data.split(data.SELFIE_ANIME)[1][-3:]
    photos = [Image.open(p).convert("RGB") for p in data.split(data.SELFIE_PHOTOS)[1][:3] + data.split(data.UTKFACE)[1][:3]]
    smoothed = [Image.fromarray(cartoon_probe.gaussian_blur(np.asarray(p), 3.0)) for p in photos]
    smoothed += [Image.fromarray(cartoon_probe.bilateral_smoothing(np.asarray(p))) for p in photos]
    return [Image.open(p).convert("RGB") for p in cartoons], photos + smoothed


def test_a_probe_trained_on_a_few_images_separates_cartoons_from_smoothed_photos(probe_cache):
    probe, _ = probe_cache
    assert {kind: a["images"] for kind, a in probe.accuracy.items()} == {
        "cartoon": 8, "photo": 8, "blurred photo": 8, "bilateral photo": 8}
    assert all(0 <= a["accuracy"] <= 1 for a in probe.accuracy.values())
    cartoons, photos = unseen_images()
    p_cartoons, p_photos = probe.p_cartoon(cartoons), probe.p_cartoon(photos)
    assert (p_cartoons > 0.5).mean() >= 5 / 6 and (p_photos < 0.5).mean() >= 16 / 18
    assert p_cartoons.min() > np.median(p_photos)


def test_posterised_photos_join_the_negatives_only_when_asked():
    files = [(data.split(data.CARTOONSET)[1][0], cartoon_probe.CARTOON), (data.split(data.UTKFACE)[0][0], cartoon_probe.PHOTO)]
    default, asked = TINY, cartoon_probe.ProbeSettings(cartoons_per_folder=4, photos_per_folder=4, posterised_negatives=True)
    assert [kind for _, kind, _ in cartoon_probe.labelled_pixels(files, default)] == [
        "cartoon", "photo", "blurred photo", "bilateral photo"]
    copies = list(cartoon_probe.labelled_pixels(files, asked))
    assert [kind for _, kind, _ in copies] == ["cartoon", "photo", "blurred photo", "bilateral photo", "posterised photo"]
    assert copies[-1][2] == copies[1][2]  # the posterised copy falls in its photo's fold
    colours = len(np.unique(copies[-1][0].reshape(-1, 3), axis=0))
    assert cartoon_probe.POSTERISE_COLOURS[0] - 2 <= colours <= cartoon_probe.POSTERISE_COLOURS[1]  # Lab->RGB rounding may merge two
    assert cartoon_probe.cache_path(default, files) != cartoon_probe.cache_path(asked, files)  # asking trains another probe


def test_the_cached_probe_is_the_trained_one_and_other_settings_train_another(probe_cache, monkeypatch):
    probe, folder = probe_cache
    monkeypatch.setattr(cartoon_probe, "cache_dir", lambda: folder)

    def untrainable(*args, **kwargs):
        raise AssertionError("the probe should have come from the cache")

    monkeypatch.setattr(cartoon_probe, "train_probe", untrainable)
    cached = cartoon_probe.trained_probe(TINY, progress=None)
    assert cached.accuracy == probe.accuracy and cached.settings == probe.settings
    images = [Image.fromarray(noisy_photo()), Image.fromarray(inked_cartoon())]
    assert np.allclose(cached.p_cartoon(images), probe.p_cartoon(images), atol=1e-6)
    other = cartoon_probe.ProbeSettings(cartoons_per_folder=4, photos_per_folder=4, weight_decay=1.0)
    with pytest.raises(AssertionError, match="from the cache"):
        cartoon_probe.trained_probe(other, progress=None)


def test_evaluation_writes_every_figure_for_the_cartoonizer_and_the_references(probe_cache, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cartoon_probe, "cache_dir", lambda: probe_cache[1])
    output = tmp_path / "eval.json"
    evaluate.main(["--random-weights", "--limit", "1", "--reference", "--probe-images", "4", "--output", str(output)])
    report = json.loads(output.read_text())
    assert report["probe"]["cross_validated_accuracy"] == probe_cache[0].accuracy
    assert set(report["results"]) == {"whitebox", *evaluate.REFERENCES}
    for result in report["results"].values():
        assert len(result["images"]) == 2 and all(0 <= image["p_cartoon"] <= 1 for image in result["images"])
        row = result["summary"]["all"]
        assert {"flat_ratio", "edge_ratio", "read_as_cartoon", "landmark_distance", "face_kept", "landmark_drift",
                "structure_match", "skin_shift", "skin_lightening", "targets_missed"} <= set(row)
        assert {"flat_ratio", "edge_ratio", "read_as_cartoon"} <= set(row["interval_90"])
        assert isinstance(result["meets_targets"], bool)
    blurred = report["results"]["gaussian blur sigma 2"]["summary"]["all"]
    assert blurred["flat_ratio"] > 1 > blurred["edge_ratio"] and "edge" in blurred["targets_missed"]
    jpeg = report["results"]["photo as JPEG q50 (detector noise floor)"]["summary"]["all"]
    assert jpeg["landmark_drift"] < 0.02 and jpeg["structure_match"] > 0.8  # nothing moved
    assert "cross-validated" in capsys.readouterr().out
