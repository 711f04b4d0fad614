"""Model loading: shipped folder offline, Hub cache by repo id, safetensors only."""

import shutil

import huggingface_hub
import pytest
import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from cartoon import hub


class TinyModel(nn.Module, PyTorchModelHubMixin):
    def __init__(self, width: int = 4):
        super().__init__()
        self.width = width
        self.linear = nn.Linear(width, width)

    def forward(self, x):
        return self.linear(x)


@pytest.fixture
def registry(monkeypatch, tmp_path):
    """A registry entry for TinyModel with its own shipped folder and an empty Hub cache."""
    monkeypatch.setattr(hub, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setitem(hub.REGISTRY, "tiny", hub.ModelEntry(f"{__name__}:TinyModel", "someone/tiny", "tiny"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("CARTOON_WEIGHTS_TINY", raising=False)
    monkeypatch.delenv("CARTOON_HUB_TINY", raising=False)
    return tmp_path


def seeded_model(seed, width=4):
    torch.manual_seed(seed)
    return TinyModel(width=width)


def lay_out_hub_cache(cache, repo_id, model):
    """Write a model into a Hub cache exactly as `huggingface_hub` lays out a download."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    model.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_shipped_folder_loads_offline_without_probing_network(registry, monkeypatch):
    shipped = seeded_model(1, width=6)
    shipped.save_pretrained(registry / "weights" / "tiny")
    monkeypatch.setattr(hub, "_hub_reachable", lambda: pytest.fail("offline load must not probe the network"))
    loaded = hub.load_model("tiny")
    assert loaded.width == 6  # config.json restored the constructor arguments
    assert same_weights(loaded, shipped)
    assert not loaded.training


def test_hub_cache_is_preferred_by_repo_id(registry):
    seeded_model(1).save_pretrained(registry / "weights" / "tiny")
    from_hub = seeded_model(2)
    lay_out_hub_cache(registry / "hub", "someone/tiny", from_hub)
    assert same_weights(hub.load_model("tiny"), from_hub)


def test_repo_id_override_by_environment(registry, monkeypatch):
    shipped = seeded_model(1)
    shipped.save_pretrained(registry / "weights" / "tiny")
    other = seeded_model(3)
    lay_out_hub_cache(registry / "hub", "other/tiny", other)
    assert same_weights(hub.load_model("tiny"), shipped)  # default repo id is not cached
    monkeypatch.setenv("CARTOON_HUB_TINY", "other/tiny")
    assert same_weights(hub.load_model("tiny"), other)


def test_weights_folder_override(registry, monkeypatch, tmp_path):
    lay_out_hub_cache(registry / "hub", "someone/tiny", seeded_model(2))
    retrained = seeded_model(4)
    retrained.save_pretrained(tmp_path / "mine")
    monkeypatch.setenv("CARTOON_WEIGHTS_TINY", str(tmp_path / "mine"))
    assert same_weights(hub.load_model("tiny"), retrained)


def test_pickle_weights_are_never_loaded(registry):
    """A Hub snapshot or folder with only `pytorch_model.bin` is not a model here."""
    cache_model = seeded_model(2)
    lay_out_hub_cache(registry / "hub", "someone/tiny", cache_model)
    snapshot = next((registry / "hub").glob("models--someone--tiny/snapshots/*"))
    (snapshot / "model.safetensors").unlink()
    torch.save(cache_model.state_dict(), snapshot / "pytorch_model.bin")
    shipped = registry / "weights" / "tiny"
    shipped.mkdir(parents=True)
    shutil.copy(snapshot / "config.json", shipped / "config.json")
    torch.save(cache_model.state_dict(), shipped / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        hub.load_model("tiny")


def test_mismatched_weights_are_an_error(registry):
    seeded_model(1, width=4).save_pretrained(registry / "weights" / "tiny")
    config = registry / "weights" / "tiny" / "config.json"
    config.write_text(config.read_text().replace("4", "5"))
    with pytest.raises(RuntimeError):
        hub.load_model("tiny")


def test_unknown_model_name():
    with pytest.raises(KeyError, match="known:"):
        hub.load_model("nope")


def test_default_device_is_the_project_default(registry, monkeypatch):
    """Without a device, models go where `cartoon.device.default_device` says (CUDA when present)."""
    seeded_model(1).save_pretrained(registry / "weights" / "tiny")
    monkeypatch.setattr(hub, "default_device", lambda: torch.device("meta"))
    assert next(hub.load_model("tiny").parameters()).device.type == "meta"
    assert next(hub.load_model("tiny", device="cpu").parameters()).device.type == "cpu"


def test_installed_weights_are_found_without_the_network(registry, monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "_hub_reachable", lambda: pytest.fail("looking for installed weights must not probe the network"))
    assert not hub.weights_installed("tiny")
    lay_out_hub_cache(registry / "hub", "someone/tiny", seeded_model(2))
    assert hub.weights_installed("tiny")  # the Hub cache counts
    monkeypatch.setenv("CARTOON_WEIGHTS_TINY", str(tmp_path / "empty"))
    assert not hub.weights_installed("tiny")  # a chosen folder is the only place looked at, as in load_model
    seeded_model(4).save_pretrained(tmp_path / "mine")
    monkeypatch.setenv("CARTOON_WEIGHTS_TINY", str(tmp_path / "mine"))
    assert hub.weights_installed("tiny")
