"""The shared training plumbing."""

import importlib
import signal

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS
from cartoon.data import forever
from cartoon.training import DecayingRates, Distributed, Run, StopRequest


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


def test_a_signal_asks_the_loop_to_stop_and_the_process_then_exits_as_the_signal_would():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        with StopRequest() as stop_requested:
            assert not stop_requested()
            signal.raise_signal(signal.SIGTERM)  # handled: the test process goes on
            assert stop_requested()
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_without_a_signal_the_loop_ends_as_usual_and_the_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop_requested:
        assert signal.getsignal(signal.SIGTERM) is not before
        assert not stop_requested()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_signal_does_at_once_what_it_did_before():
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever pytest was started with
    try:
        with pytest.raises(KeyboardInterrupt):  # SIGINT's own handler, not a SystemExit after the step
            with StopRequest():
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_signal_the_process_ignores_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a background job
    try:
        with StopRequest() as stop_requested:
            signal.raise_signal(signal.SIGINT)
            assert not stop_requested()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


class SignalledElsewhere:
    """A `Distributed` stand-in whose other rank received the signal."""

    def any(self, flag: bool) -> bool:
        return True


def test_a_rank_stopped_because_another_was_signalled_exits_as_that_one_does():
    with pytest.raises(SystemExit) as stopped:
        with StopRequest(SignalledElsewhere()) as stop_requested:
            assert stop_requested()
    assert stopped.value.code == 128 + signal.SIGTERM


def test_a_signal_during_the_last_steps_saves_still_exits_as_the_signal_would():
    with pytest.raises(SystemExit) as stopped:
        with StopRequest() as stop_requested:
            assert not stop_requested()  # the loop's last look, then its final checkpoint…
            signal.raise_signal(signal.SIGTERM)  # …during which the signal comes
    assert stopped.value.code == 128 + signal.SIGTERM


class HandlerInWorker(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.tensor([signal.getsignal(number) is signal.SIG_IGN for number in StopRequest.SIGNALS])


def test_loader_workers_leave_the_stop_signals_to_the_training_loop():
    loader = Distributed("cpu").loader(HandlerInWorker(), batch_size=2, workers=1, seed=0)
    assert all(bool(batch.all()) for batch in loader)


AVATAR_RUNS = {  # tiny runs of the two avatar trainers on 12 made-up 64² faces, checkpointing only every 100 steps
    "acgan": ["--width", "8", "--blocks", "1", "--d-width", "8", "--batch-size", "4", "--held-out-per-pair", "1",
              "--sample-every", "100", "--snapshot-every", "100", "--device", "cpu"],
    "stylegan": ["--resolution", "16", "--latent-dim", "16", "--mapping-layers", "2", "--max-channels", "8",
                 "--batch-size", "4", "--held-out-per-pair", "1", "--sample-every", "100"],
}


@pytest.mark.parametrize("family", sorted(AVATAR_RUNS))
def test_an_avatar_run_stopped_by_a_signal_checkpoints_that_step_and_resumes(family, tagged_faces, tmp_path, monkeypatch):
    trainer = importlib.import_module(f"cartoon.{family}.train")
    faces = tagged_faces(12, 64, lambda i: (HAIR_COLOURS[i % 2], EYE_COLOURS[0]))
    argv = AVATAR_RUNS[family] + ["--data", str(faces), "--run-dir", str(tmp_path / "run"), "--threads", "1",
                                  "--log-every", "100", "--save-every", "100"]
    step, calls = trainer.train_step, []

    def killed_during_the_second(*batch):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGTERM)
        return step(*batch)

    monkeypatch.setattr(trainer, "train_step", killed_during_the_second)
    with pytest.raises(SystemExit) as stopped:
        trainer.main(argv + ["--steps", "5"])
    assert stopped.value.code == 128 + signal.SIGTERM and len(calls) == 2
    assert Run(tmp_path / "run", main=False).read_checkpoint()["step"] == 2

    monkeypatch.setattr(trainer, "train_step", step)
    assert trainer.main(argv + ["--steps", "3", "--resume"]) == 0
    assert Run(tmp_path / "run", main=False).read_checkpoint()["step"] == 3
