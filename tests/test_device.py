"""`default_device`: CUDA when torch sees a GPU, the CPU otherwise, an explicit override wins."""

import pytest
import torch

from cartoon import device


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv("CARTOON_DEVICE", raising=False)
    device.default_device.cache_clear()
    yield
    device.default_device.cache_clear()


@pytest.mark.parametrize("has_cuda, expected", [(True, "cuda"), (False, "cpu")])
def test_picks_cuda_only_when_present(monkeypatch, has_cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_cuda)
    assert device.default_device().type == expected


def test_environment_override(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("CARTOON_DEVICE", "cpu")
    assert device.default_device() == torch.device("cpu")


def test_cuda_override_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CARTOON_DEVICE", "cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        device.default_device()
