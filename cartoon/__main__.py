"""`python -m cartoon COMMAND ...`: each model family registers its own sub-commands."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules with a `register(subparsers)` that adds sub-commands whose `func(args)` returns an exit code.
COMMAND_MODULES = ["cartoon.whitebox.cli", "cartoon.acgan.cli", "cartoon.twingan.cli", "cartoon.stylegan.cli", "cartoon.sheet"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cartoon", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FileNotFoundError as error:  # e.g. a model with neither shipped weights nor the Hub: say which
        raise SystemExit(f"error: {error}") from error


if __name__ == "__main__":
    sys.exit(main())
