"""The device every model runs on: the first CUDA GPU when there is one, else the CPU.

A Space with a GPU gets it without a setting; `CARTOON_DEVICE=cpu` (or `cuda:1`, …) overrides.
"""

from __future__ import annotations

import functools
import os

import torch


@functools.lru_cache(maxsize=None)
def default_device() -> torch.device:
    requested = os.environ.get("CARTOON_DEVICE")
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"CARTOON_DEVICE={requested} but no CUDA GPU is available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
