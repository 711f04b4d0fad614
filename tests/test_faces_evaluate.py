"""The white-box quality figures behave as their definitions say on cases with known answers."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from cartoon import data
from cartoon.whitebox.evaluate import compare, summarise


pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_photo_compared_with_itself_scores_perfectly_and_a_blank_loses_the_face():
    photo = Image.open(data.split(data.SELFIE_PHOTOS)[1][0]).convert("RGB")
    same = compare(photo, photo)
    assert same["landmark_distance"] == 0.0 and same["face_kept"] == 1.0
    assert same["skin_shift"] == 0.0 and same["skin_lightening"] == 0.0
    assert same["cartoon_flat"] == same["photo_flat"] and same["cartoon_edge"] == same["photo_edge"]

    posterised = photo.quantize(colors=16).convert("RGB").filter(ImageFilter.GaussianBlur(1))
    flat = compare(photo, posterised)
    assert flat["cartoon_flat"] > 1.2 * flat["photo_flat"] and flat["face_kept"] == 1.0 and flat["landmark_distance"] < 0.1

    blank = compare(photo, Image.new("RGB", photo.size, (128, 128, 128)))
    assert blank["face_kept"] == 0.0 and blank["landmark_distance"] is None
    assert blank["skin_lightening"] < -10  # mid grey (L* 54) is darker than this bright selfie's skin
    assert blank["cartoon_edge"] == 0.0 and blank["cartoon_flat"] == 1.0


def test_rows_split_utkface_by_gender_and_age_band():
    def record(dataset, gender, age, kept):
        groups = {"dataset": dataset, "gender": gender, "age": data.age_band(age)}
        look = {"photo_flat": 0.2, "cartoon_flat": 0.5 if kept else 0.1, "photo_edge": 10.0, "cartoon_edge": 10.0}
        return {"groups": groups, "landmark_distance": 0.1 if kept else None, "face_kept": float(kept), **look}

    records = [record("UTKFace", "male", 70, True), record("UTKFace", "male", 8, False), record("selfie2anime", "female", 30, True)]
    summary = summarise(records)
    assert summary["all"]["photos"] == 3 and np.isclose(summary["all"]["face_kept"], 2 / 3)
    assert summary["UTKFace male"]["face_kept"] == 0.5
    assert np.isclose(summary["UTKFace male"]["flat_ratio"], 1.5) and summary["all"]["edge_ratio"] == 1.0  # ratio of means
    assert summary["UTKFace male older (60+)"]["landmark_distance"] == 0.1
    assert summary["UTKFace male child (<13)"]["landmark_distance"] is None
    assert "UTKFace female" not in summary
