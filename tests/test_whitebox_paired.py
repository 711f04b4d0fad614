"""Two evaluations read paired on the same photos (cartoon.whitebox.paired)."""

import numpy as np
import pytest

from cartoon.whitebox import paired


def records(lightening, seed=0, count=60):
    """Per-photo records shaped like cartoon.whitebox.evaluate's, half UTKFace White men, half selfies."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        groups = ({"dataset": "UTKFace", "gender": "male", "age": "adult (13-59)", "race": "White"} if k % 2
                  else {"dataset": "selfie2anime", "gender": "female", "age": "adult (13-59)"})
        out.append({"file": f"{k}.jpg", "groups": groups, "photo_flat": 0.3, "cartoon_flat": 0.5 + 0.1 * rng.random(),
                    "photo_edge": 8.0, "cartoon_edge": 12 + 4 * rng.random(), "landmark_distance": 0.1, "face_kept": 1.0,
                    "landmark_drift": 0.01, "structure_match": 0.7, "skin_shift": 3 + rng.random(),
                    "skin_lightening": lightening + rng.normal(0, 3), "read_as_cartoon": float(rng.random() < 0.8)})
    return out


def test_a_model_read_against_itself_differs_by_nothing():
    reading = records(1.0)
    differences = paired.paired_differences(reading, list(reversed(reading)))
    for group in ("all", "selfie2anime", "UTKFace White"):
        for value in differences[group].values():
            assert value == [0.0, 0.0, 0.0]


def test_a_shift_common_to_every_photo_shows_with_a_tight_interval_where_the_photos_spread_is_wide():
    reference = records(1.0)
    lighter = [dict(r, skin_lightening=r["skin_lightening"] + 0.5) for r in reference]
    difference, low, high = paired.paired_differences(lighter, reference)["all"]["skin_lightening"]
    assert difference == pytest.approx(0.5) and low == pytest.approx(0.5) and high == pytest.approx(0.5)
    unpaired_spread = np.std([r["skin_lightening"] for r in reference]) / np.sqrt(len(reference))
    assert unpaired_spread > 0.3  # the spread an unpaired interval carries, which pairing removes


def test_darkening_a_group_by_as_much_as_the_reference_lightens_it_keeps_its_level_as_well():
    reference = records(0.0)
    lightened = [dict(r, skin_lightening=0.6) for r in reference]
    darkened = [dict(r, skin_lightening=-0.6) for r in reference]
    level = paired.paired_differences(darkened, lightened)["all"]
    assert level["skin_lightening"][0] == pytest.approx(-1.2)
    assert level["skin_level_error"] == pytest.approx([0.0, 0.0, 0.0])


def test_reports_of_different_photos_are_refused():
    with pytest.raises(ValueError, match="different photos"):
        paired.paired_differences(records(1.0, count=60), records(1.0, count=58))
