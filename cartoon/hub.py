"""Where each model's weights come from: the Hugging Face Hub when it answers, else `weights/`.

Every model class is a `huggingface_hub.PyTorchModelHubMixin`, so a model folder is a
`config.json` plus a `model.safetensors`, whether it sits in a Hub repo, in the local Hub cache
or in this repository's `weights/` folder. Only safetensors are ever read.

Resolution order for `load_model(name)`:
1. `CARTOON_WEIGHTS_<NAME>=/some/folder`: that folder, nothing else (for retrained models).
2. The Hub repo id (`CARTOON_HUB_<NAME>=owner/repo` overrides the registry's default), first
   from the local Hub cache, then from the network unless the Hub is unreachable or
   `HF_HUB_OFFLINE=1`.
3. The folder shipped in `weights/`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import snapshot_download, try_to_load_from_cache

from cartoon.device import default_device

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
HUB_HOST = "huggingface.co"
MODEL_FILES = ("config.json", "model.safetensors")


@dataclass(frozen=True)
class ModelEntry:
    model_class: str  # "module:Class", imported only when the model is loaded
    repo_id: str  # default Hub repo id
    folder: str  # shipped folder under weights/

    def resolve_class(self):
        module, _, name = self.model_class.partition(":")
        return getattr(importlib.import_module(module), name)


REGISTRY: dict[str, ModelEntry] = {
    # the white-box cartoonizer's styles (cartoon.whitebox.STYLES): anime-portrait, then flat cel
    "whitebox": ModelEntry("cartoon.whitebox.model:Generator", "cartoon-people/whitebox-cartoonizer", "whitebox"),
    "whitebox-cel": ModelEntry("cartoon.whitebox.model:Generator", "cartoon-people/whitebox-cel", "whitebox-cel"),
    "acgan": ModelEntry("cartoon.acgan.model:Generator", "cartoon-people/acgan-avatars", "acgan"),
    # the first avatar generator, kept so that its `acgan:v1` recipes keep their pixels
    "acgan-v1": ModelEntry("cartoon.acgan.model:Generator", "cartoon-people/acgan-avatars-v1", "acgan-v1"),
    # the third: the colour-conditioned style-based generator (`acgan:v3` recipes), weights once shipped
    "acgan-v3": ModelEntry("cartoon.stylegan.model:Generator", "cartoon-people/acgan-avatars-v3", "acgan-v3"),
    "twingan": ModelEntry("cartoon.twingan.model:TwinGAN", "cartoon-people/twingan-selfie2anime", "twingan"),
    "stylegan": ModelEntry("cartoon.stylegan.model:Generator", "cartoon-people/stylegan-anime", "stylegan"),
}


def _env_key(name: str) -> str:
    return name.upper().replace("-", "_")


def repo_id_for(name: str) -> str:
    return os.environ.get(f"CARTOON_HUB_{_env_key(name)}", REGISTRY[name].repo_id)


def _folder_variable(name: str) -> str:
    return f"CARTOON_WEIGHTS_{_env_key(name)}"


def shipped_folder(name: str) -> Path:
    override = os.environ.get(_folder_variable(name))
    return Path(override) if override else WEIGHTS_DIR / REGISTRY[name].folder


def weights_installed(name: str) -> bool:
    """True when `load_model(name)` finds weights without asking the network: the folder that
    `CARTOON_WEIGHTS_<NAME>` names, else the shipped folder or the local Hub cache."""
    if (shipped_folder(name) / "model.safetensors").is_file():
        return True
    if _folder_variable(name) in os.environ:
        return False
    return all(isinstance(try_to_load_from_cache(repo_id_for(name), file), str) for file in MODEL_FILES)


def hub_offline() -> bool:
    """True when the Hub should not be asked: the user said so, or it does not answer in time."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return True
    return not _hub_reachable()


@functools.lru_cache(maxsize=1)
def _hub_reachable(timeout: float = 1.5) -> bool:
    # One short TCP probe per process, so an offline machine never waits on the Hub client's own
    # (much longer) timeouts and retries for every model. It runs in a thread because a name
    # lookup ignores socket timeouts and can hang on a machine without DNS.
    answered = threading.Event()

    def probe():
        try:
            with socket.create_connection((HUB_HOST, 443), timeout=timeout):
                answered.set()
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return answered.is_set()


def load_model(name: str, device: str | torch.device | None = None, hub: bool = True) -> torch.nn.Module:
    """Load a registered model in eval mode on `device` (default: CUDA when present, else CPU).

    See the module docstring for where the weights come from.
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    cls = REGISTRY[name].resolve_class()
    model = None
    if hub and _folder_variable(name) not in os.environ:
        model = _from_hub(cls, repo_id_for(name))
    if model is None:
        folder = shipped_folder(name)
        if not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"no weights for {name!r}: {folder}/model.safetensors is missing and the Hub "
                f"repo {repo_id_for(name)!r} could not be loaded"
            )
        model = _from_folder(cls, folder)
    return model.to(device or default_device()).eval()


def _from_hub(cls, repo_id: str):
    """The model from the Hub cache or the Hub, or None when neither has it."""
    attempts = [True] if hub_offline() else [True, False]
    for local_only in attempts:
        try:
            # Fetch exactly the config and the safetensors: the mixin itself would fall back to a
            # pickled `pytorch_model.bin` when a repo has no safetensors, and we never load pickles.
            folder = snapshot_download(repo_id, allow_patterns=list(MODEL_FILES), local_files_only=local_only)
        except Exception as error:  # missing repo, no network, no cache entry: fall back
            log.debug("hub load of %s (local_only=%s) failed: %s", repo_id, local_only, error)
            continue
        if all((Path(folder) / name).is_file() for name in MODEL_FILES):
            return _from_folder(cls, Path(folder))
    return None


def _from_folder(cls, folder: Path):
    # strict: a checkpoint that does not match the architecture is an error, not a silent half-load
    return cls.from_pretrained(str(folder), strict=True)
