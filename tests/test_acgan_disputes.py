"""Disputed tags: each face read only by classifiers that never trained on it, and a trainer leaving the disputed out."""

import argparse

import torch
from torch import nn

from cartoon.acgan import disputes
from cartoon.acgan.data import add_data_args, read_disputed, read_tags, split_tags, training_faces
from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS


def colours(i):
    return HAIR_COLOURS[i % 3], EYE_COLOURS[i % 2]


class MeanColourReader(nn.Module):
    """Stands in for a trained classifier: remembers the images it was trained on, reads hair from the mean."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def forward(self, images):
        hair = torch.zeros(len(images), len(HAIR_COLOURS))
        hair[:, 0] = images.mean((1, 2, 3)) * 10
        return hair, torch.zeros(len(images), len(EYE_COLOURS))


def test_every_face_is_read_by_a_classifier_that_never_saw_it(tagged_faces, monkeypatch):
    folder = tagged_faces(24, 8, colours)
    rows = read_tags(folder)
    trained_on = []

    def fake_train(train, held, epochs, seed, log):
        trained_on.append({bytes(image.numpy()) for image in train.images})
        return MeanColourReader(trained_on[-1])

    read_by = {}
    real_probabilities = disputes.tag_probabilities

    def recording_probabilities(model, images, batch_size=256):
        for image in ((images + 1) * 127.5).round().to(torch.uint8):  # back to the stored bytes
            read_by.setdefault(bytes(image.numpy()), []).append(model.seen)
        return real_probabilities(model, images, batch_size)

    monkeypatch.setattr(disputes, "train_classifier", fake_train)
    monkeypatch.setattr(disputes, "tag_probabilities", recording_probabilities)
    hair, eyes = disputes.out_of_fold(rows, held=None, folds=3, log=lambda *_: None)

    assert hair.shape == (24, len(HAIR_COLOURS)) and eyes.shape == (24, len(EYE_COLOURS))
    assert torch.allclose(hair.sum(1), torch.ones(24))  # every row was read, none left at zero
    assert len(read_by) == 24 and all(len(models) == 1 for models in read_by.values())
    assert all(image not in models[0] for image, models in read_by.items())


def test_the_trainer_leaves_out_exactly_the_disputed_training_faces(tagged_faces, tmp_path):
    folder = tagged_faces(60, 8, colours)
    train_rows, held_rows = split_tags(read_tags(folder), per_pair=2)
    # faces with an even index read their hair tag at 0.9, odd ones at 0.2
    hair = torch.zeros(len(train_rows), len(HAIR_COLOURS))
    for i, (_, h, _) in enumerate(train_rows):
        hair[i, h] = 0.9 if i % 2 == 0 else 0.2
    eyes = torch.full((len(train_rows), len(EYE_COLOURS)), 1 / len(EYE_COLOURS))
    table = tmp_path / "disputes.csv"
    count = disputes.write_disputes(table, train_rows, hair, eyes, below=0.5)

    disputed = read_disputed(table)
    assert count == len(disputed) == len(train_rows) // 2
    assert disputed == {row[0].name for i, row in enumerate(train_rows) if i % 2 == 1}

    parser = argparse.ArgumentParser()
    add_data_args(parser)
    kept = training_faces(parser.parse_args(["--data", str(folder), "--held-out-per-pair", "2", "--disputes", str(table)]), size=8)
    everything = training_faces(parser.parse_args(["--data", str(folder), "--held-out-per-pair", "2"]), size=8)
    assert len(everything) == len(train_rows) and len(kept) == len(train_rows) - count
    assert kept.hair.tolist() == [h for i, (_, h, _) in enumerate(train_rows) if i % 2 == 0]
    assert not {row[0].name for row in held_rows} & disputed  # held-out faces are never listed
