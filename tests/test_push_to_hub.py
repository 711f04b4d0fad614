"""scripts/push_to_hub.py against a recording stand-in for HfApi with the real method signatures."""

import importlib.util
from pathlib import Path
from unittest import mock

import pytest
import torch
from huggingface_hub import HfApi

from cartoon import hub

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "push_to_hub.py"


@pytest.fixture
def push_to_hub():
    spec = importlib.util.spec_from_file_location("push_to_hub", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """weights/ with a complete whitebox folder (plus a stray pickle) and nothing for the others."""
    monkeypatch.setattr(hub, "WEIGHTS_DIR", tmp_path)
    for name in hub.REGISTRY:
        monkeypatch.delenv(f"CARTOON_WEIGHTS_{name.upper()}", raising=False)
        monkeypatch.delenv(f"CARTOON_HUB_{name.upper()}", raising=False)
    folder = tmp_path / hub.REGISTRY["whitebox"].folder
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "README.md").write_text("# model card")
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    return tmp_path


def recording_api():
    api = mock.create_autospec(HfApi, instance=True)  # a call that the real HfApi would reject fails here too
    api.upload_folder.return_value = mock.Mock(commit_url="https://huggingface.co/x/commit/1")
    return api


def test_pushes_each_model_with_weights_to_its_registry_repo(push_to_hub, weights):
    api = recording_api()
    assert push_to_hub.main([], api=api) == 0
    api.create_repo.assert_called_once_with("cartoon-people/whitebox-cartoonizer", repo_type="model", private=False, exist_ok=True)
    upload = api.upload_folder.call_args.kwargs
    assert upload["repo_id"] == "cartoon-people/whitebox-cartoonizer"
    assert Path(upload["folder_path"]) == weights / "whitebox"
    assert api.upload_folder.call_count == 1  # acgan and twingan have no weights here


def test_only_config_weights_card_and_training_state_are_sent(push_to_hub, weights):
    assert push_to_hub.files_to_send(weights / "whitebox") == ["README.md", "config.json", "model.safetensors"]
    api = recording_api()
    push_to_hub.main(["whitebox"], api=api)
    assert "pytorch_model.bin" not in push_to_hub.files_to_send(weights / "whitebox")
    state = {"training_state.safetensors", "training.json"}
    assert set(api.upload_folder.call_args.kwargs["allow_patterns"]) == {"README.md", "config.json", "model.safetensors", *state}
    for name in state:  # an export's training state goes along when there is one
        (weights / "whitebox" / name).write_bytes(b"state")
    assert set(push_to_hub.files_to_send(weights / "whitebox")) == {"README.md", "config.json", "model.safetensors", *state}


def test_repo_id_override_and_private(push_to_hub, weights, monkeypatch):
    monkeypatch.setenv("CARTOON_HUB_WHITEBOX", "me/my-cartoonizer")
    api = recording_api()
    push_to_hub.main(["whitebox", "--private"], api=api)
    api.create_repo.assert_called_once_with("me/my-cartoonizer", repo_type="model", private=True, exist_ok=True)
    assert api.upload_folder.call_args.kwargs["repo_id"] == "me/my-cartoonizer"


def test_a_folder_without_weights_or_card_is_not_pushed(push_to_hub, weights, capsys):
    (weights / "whitebox" / "README.md").unlink()
    api = recording_api()
    assert push_to_hub.main(["whitebox"], api=api) == 1
    assert "lacks README.md" in capsys.readouterr().err
    api.create_repo.assert_not_called()
    api.upload_folder.assert_not_called()


def test_dry_run_sends_nothing(push_to_hub, weights, capsys):
    api = recording_api()
    assert push_to_hub.main(["--dry-run"], api=api) == 0
    assert "cartoon-people/whitebox-cartoonizer" in capsys.readouterr().out
    assert api.method_calls == []


def test_unknown_model_name_is_refused(push_to_hub, weights):
    with pytest.raises(SystemExit):
        push_to_hub.main(["nope"], api=recording_api())
