"""Training commands run under torchrun: none of their flags may be taken by torchrun's own parser."""

import pytest
from torch.distributed.run import get_args_parser as torchrun_parser

from cartoon.acgan import train as acgan_train
from cartoon.twingan import train as twingan_train
from cartoon.whitebox import pretrain as whitebox_pretrain
from cartoon.whitebox import train as whitebox_train


PARSERS = {
    "cartoon.acgan.train": acgan_train.build_parser,
    "cartoon.twingan.train": twingan_train.build_parser,
    "cartoon.whitebox.train": whitebox_train.build_parser,
    "cartoon.whitebox.pretrain": whitebox_pretrain.build_parser,
}


@pytest.mark.parametrize("module", PARSERS)
def test_every_flag_passes_through_torchrun(module):
    flags = [flag for action in PARSERS[module]()._actions for flag in action.option_strings if flag.startswith("--") and flag != "--help"]
    assert "--run-dir" in flags and "--resume" in flags
    for flag in flags:
        parsed = torchrun_parser().parse_args(["--nproc_per_node", "2", "-m", module, flag, "1"])
        assert parsed.training_script == module and parsed.training_script_args == [flag, "1"], flag

