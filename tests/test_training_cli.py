"""Training commands run under torchrun: none of their flags may be taken by torchrun's own parser."""

import argparse

import pytest
from torch.distributed.run import get_args_parser as torchrun_parser

from cartoon.acgan import train as acgan_train
from cartoon.twingan import train as twingan_train
from cartoon.whitebox import pretrain as whitebox_pretrain
from cartoon.whitebox import train as whitebox_train


def parser_of(parse_args) -> argparse.ArgumentParser:
    """The parser a module's `parse_args([])` builds, caught on its way through argparse."""
    caught = []
    original = argparse.ArgumentParser.parse_args

    def catch(self, args=None, namespace=None):
        caught.append(self)
        return original(self, args, namespace)

    argparse.ArgumentParser.parse_args = catch
    try:
        parse_args([])
    finally:
        argparse.ArgumentParser.parse_args = original
    return caught[0]


PARSERS = {
    "cartoon.acgan.train": lambda: parser_of(acgan_train.parse_args),
    "cartoon.twingan.train": twingan_train.build_parser,
    "cartoon.whitebox.train": lambda: parser_of(whitebox_train.parse_args),
    "cartoon.whitebox.pretrain": lambda: parser_of(whitebox_pretrain.parse_args),
}


@pytest.mark.parametrize("module", PARSERS)
def test_every_flag_passes_through_torchrun(module):
    flags = [flag for action in PARSERS[module]()._actions for flag in action.option_strings if flag.startswith("--") and flag != "--help"]
    assert "--run-dir" in flags and "--resume" in flags
    for flag in flags:
        parsed = torchrun_parser().parse_args(["--nproc_per_node", "2", "-m", module, flag, "1"])
        assert parsed.training_script == module and parsed.training_script_args == [flag, "1"], flag


def test_the_old_run_flag_would_have_been_taken_by_torchrun():
    with pytest.raises(SystemExit):
        torchrun_parser().parse_args(["-m", "cartoon.acgan.train", "--run", "x"])
