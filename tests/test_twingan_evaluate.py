"""The TwinGAN evaluation's bookkeeping: the gender probe, the per-face count of men turned women, detail and texture distance, the paired comparison, the report, the feature cache."""

import json
from pathlib import Path

import pytest
import torch

import numpy as np
from torchmetrics.image.kid import poly_mmd

from cartoon import data
from cartoon.inception import InceptionPool3
from cartoon.twingan import near_duplicates
from cartoon.twingan.evaluate import markdown
from cartoon.twingan.metrics import (TEXTURE_SIDE, GenderProbe, blurred, gender_summary, likeness_ranks, likeness_summary, local_contrast,
                                     mean_grams, texture_distance)
from cartoon.twingan.near_duplicates import nearest, strict_held_out
from cartoon.twingan.paired import comparison_grid, paired_comparison, polynomial_kernel, resampled_kid
from cartoon.twingan.losses import at_side
from cartoon.vgg import StyleLoss


def test_gender_probe_separates_held_out_features_it_was_not_trained_on():
    torch.manual_seed(0)
    direction = torch.randn(64)

    def faces(n):
        female = torch.rand(n) < 0.5
        features = torch.randn(n, 64) + torch.where(female, 2.5, -2.5).unsqueeze(1) * direction / direction.norm()
        return features * 3 + 10, female  # off-centre and scaled: the probe standardises

    probe = GenderProbe(*faces(200))
    features, female = faces(200)
    assert ((probe.p_female(features) > 0.5) == female).float().mean() > 0.9


def test_per_face_count_sees_swaps_that_group_rates_hide():
    # two faces swap genders between reconstruction and round trip: the group's rates do not move
    photo = torch.tensor([0.9, 0.1, 0.2, 0.8])
    reconstruction = torch.tensor([0.7, 0.3, 0.2, 0.9])
    round_trip = torch.tensor([0.4, 0.6, 0.2, 0.9])
    summary = gender_summary(photo, reconstruction, round_trip)
    assert summary["read_as_female_reconstruction"] == summary["read_as_female_round_trip"] == 0.5
    assert summary["read_as_male_reconstruction_count"] == 2
    assert summary["male_turned_female"] == 0.5
    assert summary["female_turned_male"] == 0.5 and summary["read_as_female_reconstruction_count"] == 2
    assert gender_summary(photo, reconstruction, reconstruction)["male_turned_female"] == 0.0


def test_the_reconstruction_not_the_photo_is_the_control():
    # the generator's blur alone reads every face as male: nothing is blamed on anime
    photo = torch.tensor([0.9, 0.8, 0.1, 0.2])
    blurred = torch.tensor([0.3, 0.4, 0.1, 0.2])
    summary = gender_summary(photo, blurred, blurred)
    assert summary["read_as_female_photo"] == 0.5 and summary["read_as_female_round_trip"] == 0.0
    assert summary["male_turned_female"] == 0.0 and summary["p_female_shift"] == 0.0


def test_probability_shift_sees_drift_that_crosses_no_boundary():
    # every man's round trip reads more female, none past 0.5: the count stays at nil, the shift does not
    reconstruction = torch.tensor([0.10, 0.20, 0.30, 0.05])
    round_trip = reconstruction + 0.15
    summary = gender_summary(reconstruction, reconstruction, round_trip)
    assert summary["male_turned_female"] == 0.0
    assert summary["p_female_shift"] == pytest.approx(0.15)
    assert gender_summary(round_trip, round_trip, reconstruction)["p_female_shift"] == pytest.approx(-0.15)


def test_detail_is_nil_on_flat_images_and_falls_with_blur():
    torch.manual_seed(0)
    assert local_contrast(torch.full((2, 3, 32, 32), 0.3)) == pytest.approx(0.0, abs=1e-6)
    texture = torch.rand(2, 3, 32, 32) * 2 - 1
    assert local_contrast(blurred(texture, 1.0)) < 0.5 * local_contrast(texture)
    assert local_contrast(texture * 0.5) == pytest.approx(0.5 * local_contrast(texture), rel=1e-4)


def test_texture_distance_averages_whole_sets_batch_by_batch():
    """20 images go through in batches of 16 and 4: the mean must weight images, not batches."""
    torch.manual_seed(0)
    style = StyleLoss().eval()
    images = torch.rand(20, 3, 128, 128) * 2 - 1
    images[16:] = blurred(images[16:], 2.0)  # the short last batch differs, so batch weighting would show
    whole = mean_grams(style, images)
    with torch.no_grad():
        expected = style.grams(at_side(images, TEXTURE_SIDE))
    for got, want in zip(whole, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert texture_distance(mean_grams(style, images.flip(0)), whole) == pytest.approx(0.0, abs=1e-6)
    assert texture_distance(mean_grams(style, blurred(images, 2.0)), whole) > 0


def test_likeness_ignores_what_the_domain_adds_to_every_image_alike():
    torch.manual_seed(0)
    faces = torch.randn(30, 64)
    # Each domain shifts all its features one way (and scales them), as pool3 does photos and drawings.
    photos, translations = faces + torch.randn(64) * 30, 3 * faces + torch.randn(64) * 30
    ranks = likeness_ranks(photos, translations)
    assert ranks.tolist() == [0.0] * 30
    assert likeness_summary(ranks) == {"own_nearest": 1.0, "likeness_rank": 0.0}


def test_likeness_sees_a_swap_and_a_collapse_that_set_statistics_hide():
    torch.manual_seed(0)
    photos = torch.randn(200, 64)
    swapped = photos.roll(1, dims=0)  # the same set, each translation paired with another photo
    assert likeness_ranks(photos, swapped).min() > 0
    # Every photo becomes one face, give or take noise unrelated to the photo: ranks fall to chance.
    collapsed = torch.ones(200, 64) + 0.01 * torch.randn(200, 64)
    ranks = likeness_ranks(photos, collapsed)
    assert 0.4 < ranks.mean() < 0.6
    # Partly kept: its photo under noise stronger than the photo itself ranks between the two.
    half = likeness_ranks(photos, photos + torch.randn(200, 64) * 1.5)
    assert 0 < half.mean() < 0.2


def test_resampled_kid_is_torchmetrics_kid_over_whole_sets_and_never_pairs_a_drawn_image_with_itself():
    torch.manual_seed(0)
    fake, real = torch.randn(12, 8, dtype=torch.float64) + 0.3, torch.randn(9, 8, dtype=torch.float64)
    kernels = [polynomial_kernel(x.numpy(), y.numpy()) for x, y in ((fake, fake), (real, real), (fake, real))]
    # torchmetrics takes equal-sized subsets: the first 9 fakes against the 9 reals
    first = [kernels[0][:9, :9], kernels[1], kernels[2][:9]]
    assert resampled_kid(*first, np.ones((1, 9)), np.ones((1, 9)))[0] == pytest.approx(float(poly_mmd(real, fake[:9])), rel=1e-9)
    # A resample drawing fake 0 three times and real 4 twice, against the same estimate written out pair by pair.
    fake_picks, real_picks = [0, 0, 0, 1, 2, 5, 7], [4, 4, 1, 3, 8]
    fake_counts, real_counts = (np.bincount(p, minlength=n)[None].astype(float) for p, n in ((fake_picks, 12), (real_picks, 9)))

    def within(picks, kernel):
        pairs = [kernel[a, b] for i, a in enumerate(picks) for j, b in enumerate(picks) if i != j and a != b]
        return sum(pairs) / len(pairs)

    across = np.mean([kernels[2][a, b] for a in fake_picks for b in real_picks])
    by_pairs = within(fake_picks, kernels[0]) + within(real_picks, kernels[1]) - 2 * across
    assert resampled_kid(*kernels, fake_counts, real_counts)[0] == pytest.approx(by_pairs, rel=1e-9)


def test_paired_comparison_separates_a_small_gain_that_the_spread_of_either_model_hides():
    torch.manual_seed(0)
    real = torch.randn(120, 32)
    direction = torch.zeros(32)
    direction[0] = 1
    # Two models that answer each face alike but for a slightly smaller shift away from the real set.
    answers = torch.randn(60, 32)
    worse, better = answers + 0.6 * direction, answers + 0.5 * direction
    errors_worse = [0.20 + 0.1 * i / 60 for i in range(60)]
    errors_better = [e - 0.01 for e in errors_worse]
    errors_better[3] = None  # a face lost: pose is compared on the faces both keep
    r = paired_comparison(real, better, worse, errors_better, errors_worse, draws=500)
    assert r["kid_x100_difference"] < 0 and r["kid_x100_interval"][1] < 0 and r["kid_x100_better_share"] == 1.0
    assert r["kid_x100_difference"] == pytest.approx(r["kid_x100"] - r["kid_x100_against"])
    # resampling the faces moves either model's own KID by more than the gap between the two
    rng = np.random.default_rng(0)
    counts = [np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(500)]).astype(float) for n in (60, 120)]
    x, y = worse.double().numpy(), real.double().numpy()
    alone = 100 * resampled_kid(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y), *counts)
    assert np.percentile(alone, 95) - np.percentile(alone, 5) > abs(r["kid_x100_difference"])
    assert r["nme_pairs"] == 59 and r["nme_difference"] == pytest.approx(-0.01) and r["nme_better_share"] == 1.0
    same = paired_comparison(real, worse, worse, errors_worse, errors_worse, draws=50)
    assert same["kid_x100_interval"] == [0.0, 0.0] and same["nme_difference"] == 0.0 and same["kid_x100_better_share"] == 0.0
    assert "nme" not in paired_comparison(real, better, worse, [None] * 60, errors_worse, draws=10)


def test_markdown_reports_the_per_face_count():
    row = {"images": 4, "kid_x100": 20.0, "kid_x100_std": 1.0, "fid": 250.0, "landmark_nme": 0.2, "faces_found": 1.0,
           "detail": 0.061, "detail_real": 0.111, "texture_distance": 0.0154, "own_nearest": 0.55, "likeness_rank": 0.052}
    male = torch.full((4,), 0.2)
    results = {
        "selfie": row,
        "anime_to_human": row | {"kid_x100": 30.0},
        "utkface": {"gender: male": row | gender_summary(male, male, torch.tensor([0.6, 0.2, 0.2, 0.2]))},
        "gender_probe": {"train_images": 10, "accuracy_on_held_out_photos": 0.9, "accuracy_on_held_out_reconstructions": 0.8,
                         "accuracy_on_held_out_adult_photos": 0.95, "accuracy_on_held_out_adult_reconstructions": 0.85},
    }
    table = markdown(results)
    assert "25% of 4 (back: 0% of 0); +0.100" in table
    assert "0% / 0% / 25%" in table
    assert "| selfie2anime anime → human | 4 | 30.00 ± 1.00 | 250.0 | 0.061 (0.111) | 0.0154 | 0.200 | 100% | 55% (0.052) |" in table
    assert "90% of held-out photos, 80% of their reconstructions (adults 13+: 95%, 85%)" in table
    assert "Paired against" not in table
    paired = {"kid_x100": 12.5, "kid_x100_against": 13.0, "kid_x100_difference": -0.5, "kid_x100_interval": [-0.9, -0.1],
              "kid_x100_better_share": 0.98}
    results["against"] = {"model": "weights/twingan", "rows": {
        "selfie2anime photos": paired | {"nme_pairs": 90, "nme": 0.130, "nme_against": 0.134, "nme_difference": -0.004,
                                         "nme_interval": [-0.010, 0.002], "nme_better_share": 0.81},
        "UTKFace age: older": paired}}
    table = markdown(results)
    assert "Paired against weights/twingan" in table
    assert "| selfie2anime photos | 12.50 / 13.00 | -0.50 (-0.90, -0.10) | 98% | 0.130 / 0.134 (90) | -0.004 (-0.010, +0.002) | 81% |" in table
    assert "| UTKFace age: older | 12.50 / 13.00 | -0.50 (-0.90, -0.10) | 98% | – | – | – |" in table


def test_inception_features_come_back_from_the_disk_cache(tmp_path):
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    first = InceptionPool3(tmp_path / "features.pt")
    features = first(images)
    assert features.shape == (2, 2048)
    first.save()

    again = InceptionPool3(tmp_path / "features.pt")
    again.net = None  # a cached image must not reach the network
    assert torch.equal(again(images), features)
    assert torch.equal(again(images.flip(0)), features.flip(0))  # in the order asked for


def test_the_feature_cache_keeps_what_recent_evaluations_used(tmp_path):
    cache = tmp_path / "features.pt"
    images = torch.randint(0, 256, (InceptionPool3.KEEP_EVALUATIONS + 1, 3, 32, 32), dtype=torch.uint8)
    side_by_side = [InceptionPool3(cache) for _ in images]  # all started before any of them saved
    for evaluation, image in zip(side_by_side, images):
        evaluation(image[None])
        evaluation.save()
    assert len(torch.load(cache, weights_only=True)) == InceptionPool3.KEEP_EVALUATIONS

    later = InceptionPool3(cache)
    later.net = None
    assert later(images[1:]).shape == (InceptionPool3.KEEP_EVALUATIONS, 2048)  # the newest evaluations' features
    with pytest.raises(TypeError):  # the oldest was dropped, so it needs the (absent) network
        later(images[:1])


def test_an_unreadable_feature_cache_is_ignored(tmp_path):
    (tmp_path / "features.pt").write_bytes(b"half a file")
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    assert InceptionPool3(tmp_path / "features.pt")(images).shape == (1, 2048)


def test_comparison_grid_puts_each_face_over_both_models_translations():
    side, columns = 8, 3
    # each image a flat grey that names its set, its row (source / this / that) and its index
    def flat(set_index, row, count):
        values = torch.tensor([set_index * 0.3 + row * 0.1 + i * 0.01 for i in range(count)]) * 2 - 1
        return values.view(-1, 1, 1, 1).expand(count, 3, side, side)

    sets = [tuple(flat(s, r, count) for r in range(3)) for s, count in ((0, 7), (1, 2))]
    grid = comparison_grid(sets, columns)
    step = side + 2
    assert grid.shape == (3, 2 + 6 * step, 2 + columns * step)  # 3 rows per set

    def tile(row, column):
        y, x = 2 + row * step, 2 + column * step
        return grid[:, y : y + side, x : x + side]

    for row, (s, r) in enumerate((s, r) for s in range(2) for r in range(3)):
        # the long set shows faces 0, 3 and 6, evenly spaced with both ends; the short set both of its two
        for column, i in enumerate((0, 3, 6) if s == 0 else (0, 1)):
            assert torch.allclose(tile(row, column), torch.tensor(s * 0.3 + r * 0.1 + i * 0.01))
    assert torch.equal(tile(3, 2), torch.ones(3, side, side))  # the short set's missing third face is left white


def test_markdown_reports_the_strict_reference_beside_the_held_out_one():
    row = {"images": 4, "kid_x100": 13.1, "kid_x100_std": 0.4, "fid": 120.0, "landmark_nme": 0.13, "faces_found": 1.0, "detail": 0.06,
           "detail_real": 0.11, "texture_distance": 0.015, "own_nearest": 0.4, "likeness_rank": 0.05}
    male = torch.full((4,), 0.2)
    results = {"held_out": {"anime": 200, "anime_strict": 150}, "selfie": row, "anime_to_human": row,
               "utkface": {"gender: male": row | gender_summary(male, male, male)},
               "gender_probe": {"train_images": 10, "accuracy_on_held_out_photos": 0.9, "accuracy_on_held_out_reconstructions": 0.8,
                                "accuracy_on_held_out_adult_photos": 0.95, "accuracy_on_held_out_adult_reconstructions": 0.85}}
    assert "strict" not in markdown(results)  # a report from before the strict reference
    strict = {"kid_x100_strict": 15.2, "kid_x100_strict_std": 0.5, "fid_strict": 130.0}
    results["selfie"] = row | strict
    results["utkface"]["gender: male"] |= strict | {"kid_x100_strict": 17.0}
    table = markdown(results)
    assert "| selfie2anime photos | 4 | 13.10 ± 0.40 | 120.0 |" in table  # the held-out figure stays as it was
    assert "strict anime reference (150 of 200 held-out portraits" in table
    assert "selfie2anime photos 15.20 ± 0.50 / 130.0; UTKFace gender: male 17.00 ± 0.50 / 130.0." in table


def test_nearest_neighbours_find_a_planted_duplicate_and_never_the_image_itself():
    torch.manual_seed(0)
    train = torch.randn(50, 16)
    held = torch.randn(5, 16)
    held[2] = train[7] + 0.01 * torch.randn(16)  # nearly a training image
    centre = train.mean(0)
    similarity, index = nearest(held, train, centre)
    assert index[2] == 7 and similarity[2] > 0.99 and similarity.argmax() == 2
    train[30] = train[11]  # a duplicate inside the pool: each is the other's neighbour, neither its own
    similarity, index = nearest(train, train, centre, same=True)
    assert index[30] == 11 and index[11] == 30 and similarity[30] == pytest.approx(1.0)
    assert (index != torch.arange(50)).all()


def test_the_strict_reference_leaves_out_the_listed_portraits_only(tmp_path, monkeypatch):
    listed = tmp_path / "near_duplicates.json"
    listed.write_text(json.dumps({"threshold": 0.9, "near_duplicates": {"0007.jpg": {"train": "0100.jpg", "similarity": 0.95}}}))
    monkeypatch.setattr(near_duplicates, "NEAR_DUPLICATES", listed)
    files = [Path("anime") / name for name in ("0003.jpg", "0007.jpg", "0012.jpg")]
    assert strict_held_out(files) == [files[0], files[2]]


def test_the_shipped_near_duplicate_list_names_held_out_portraits_only():
    recorded = json.loads(near_duplicates.NEAR_DUPLICATES.read_text())
    held = {f.name for f in data.split(data.SELFIE_ANIME)[1]} if data.SELFIE_ANIME.is_dir() else None
    assert all(entry["similarity"] > recorded["threshold"] for entry in recorded["near_duplicates"].values())
    if held is not None:
        assert set(recorded["near_duplicates"]) <= held


def test_evaluation_reads_a_saved_model_folder_given_by_weights(tmp_path):
    from cartoon.twingan.evaluate import build_parser
    from cartoon.twingan.held_out import load_generator
    from cartoon.twingan.model import TwinGAN

    torch.manual_seed(0)
    saved = TwinGAN(resolution=32, width=4, max_width=8, skip_resolutions=(8,)).eval()
    saved.save_pretrained(str(tmp_path / "model"))
    loaded = load_generator(build_parser().parse_args(["--weights", str(tmp_path / "model")]))
    assert not loaded.training
    assert all(torch.equal(v, saved.state_dict()[k]) for k, v in loaded.state_dict().items())
