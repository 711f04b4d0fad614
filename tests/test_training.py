"""The shared training plumbing."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from cartoon.training import DecayingRates, Distributed, Run, forever


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


def test_a_restored_optimiser_keeps_the_rate_it_was_built_with_and_decays_from_it():
    model = torch.nn.Linear(3, 1)
    trained = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(2, 3)).sum().backward()
    trained.step()
    resumed = torch.optim.Adam(model.parameters(), lr=1e-4)
    critic = torch.optim.Adam(torch.nn.Linear(2, 1).parameters(), lr=4e-4)
    assert Run.restore({"step": 7, "opt": trained.state_dict()}, opt=resumed, model=model) == 7
    assert resumed.param_groups[0]["lr"] == 1e-4  # the flags' rate, not the saved one
    assert torch.equal(resumed.state_dict()["state"][0]["exp_avg"], trained.state_dict()["state"][0]["exp_avg"])

    rates = DecayingRates([resumed, model, critic], start=8, end=12)
    assert [rates(step) for step in (7, 8, 10, 12)] == [1.0, 1.0, 0.5, 0.0]
    rates(10)
    assert resumed.param_groups[0]["lr"] == pytest.approx(5e-5) and critic.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert DecayingRates([critic], start=None, end=12)(11) == 1.0 and critic.param_groups[0]["lr"] == pytest.approx(2e-4)  # no start: kept
