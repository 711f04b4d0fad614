"""The shared training plumbing."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from cartoon.training import Distributed, forever


def first_batches(seed: int, draws_before: int) -> torch.Tensor:
    loader = Distributed("cpu").loader(TensorDataset(torch.arange(64)), batch_size=8, workers=0, seed=seed)
    torch.rand(draws_before)  # what building models between making the loader and iterating it would draw
    batches = iter(loader)
    return torch.cat([next(batches)[0] for _ in range(2)])


def test_the_shuffle_follows_the_seed_not_the_global_random_state():
    torch.manual_seed(0)
    first = first_batches(seed=5, draws_before=0)
    torch.manual_seed(1)
    assert torch.equal(first_batches(seed=5, draws_before=1000), first)
    assert not torch.equal(first_batches(seed=6, draws_before=0), first)
    assert sorted(first.tolist()) != first.tolist()  # shuffled at all


def test_endless_batches_refuse_a_loader_that_yields_none_instead_of_spinning():
    short = TensorDataset(torch.arange(3))
    batches = forever(DataLoader(short, batch_size=3))
    assert [len(next(batches)[0]) for _ in range(3)] == [3, 3, 3]  # a new epoch each draw
    with pytest.raises(ValueError, match="fewer images than one batch of 8"):
        next(forever(DataLoader(short, batch_size=8, drop_last=True)))
