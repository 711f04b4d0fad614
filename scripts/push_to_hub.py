"""Publish the shipped models to the Hugging Face Hub, one model repo per registry entry.

Each `weights/<folder>/` (config.json, model.safetensors, README.md model card, and the training
state an export wrote: training_state.safetensors, training.json) goes to the repo id of its entry
in `cartoon.hub.REGISTRY` (or `CARTOON_HUB_<NAME>=owner/repo`), with `HfApi.upload_folder`. Only
those files are sent: no pickle ever reaches the Hub. Log in
first (`hf auth login`) or set HF_TOKEN; the repos are created if they do not exist.

    python scripts/push_to_hub.py                    # every model that has weights
    python scripts/push_to_hub.py whitebox --private
    python scripts/push_to_hub.py --dry-run          # list what would be sent, send nothing

Once pushed, the app and `cartoon.hub.load_model` find the models by repo id (a Space needs no
weights/ folder then).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon.hub import MODEL_FILES, REGISTRY, repo_id_for, shipped_folder  # noqa: E402
from cartoon.training_state import ARGS_FILE, STATE_FILE  # noqa: E402

REQUIRED = [*MODEL_FILES, "README.md"]
UPLOADED = [*REQUIRED, STATE_FILE, ARGS_FILE]  # the training state, where an export wrote one, so the Hub copy resumes too


def files_to_send(folder: Path) -> list[str]:
    """The files of `folder` that `upload_folder(allow_patterns=UPLOADED)` sends, checked first."""
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}: export the model and write its card first")
    present = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    return list(filter_repo_objects(present, allow_patterns=UPLOADED))


def push(names: list[str], api: HfApi, private: bool = False, dry_run: bool = False) -> list[str]:
    """Create (if needed) and update the Hub repo of each model; returns the commit URLs."""
    commits = []
    for name in names:
        folder, repo_id = shipped_folder(name), repo_id_for(name)
        sent = files_to_send(folder)
        print(f"{name}: {folder} → https://huggingface.co/{repo_id} ({', '.join(sent)})")
        if dry_run:
            continue
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder),
            allow_patterns=UPLOADED,
            commit_message=f"Upload {name} from weights/{REGISTRY[name].folder}",
        )
        commits.append(str(getattr(commit, "commit_url", commit)))
        print(f"{name}: {commits[-1]}")
    return commits


def main(argv=None, api: HfApi | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help=f"any of {', '.join(REGISTRY)}; default: every model with weights")
    parser.add_argument("--private", action="store_true", help="create new repos as private")
    parser.add_argument("--dry-run", action="store_true", help="only list what would be uploaded")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(REGISTRY))
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    names = args.models or [name for name in REGISTRY if (shipped_folder(name) / "model.safetensors").is_file()]
    if not names:
        print("no model has weights in weights/ yet: nothing to push", file=sys.stderr)
        return 1
    try:
        push(names, api or HfApi(), private=args.private, dry_run=args.dry_run)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
