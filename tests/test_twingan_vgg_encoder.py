"""TwinGAN with the frozen VGG16 encoder: where its skips come from, what it trains and saves, what it refuses,
and that models saved before the option still load as they were."""

import argparse
import json

import pytest
import torch

from cartoon.twingan import ablate
from cartoon.twingan.checkpoint import adopt_generator_config
from cartoon.twingan.model import ANIME, HUMAN, TwinGAN

pytestmark = pytest.mark.usefixtures("one_thread")


def vgg_model(resolution=32, skip_resolutions=(8, 16, 32)):
    torch.manual_seed(0)
    return TwinGAN(resolution=resolution, width=8, max_width=32, skip_resolutions=skip_resolutions, encoder="vgg16")


def images(count=2, side=32):
    return torch.rand(count, 3, side, side, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_the_generator_gets_vgg_activations_at_its_sides_and_the_trunk_goes_on_from_relu4_3():
    model = vgg_model()
    human, anime = model(images(), [HUMAN, ANIME])
    assert human.shape == anime.shape == (2, 3, 32, 32)
    code, skips = model.encode(images())
    assert code.shape == (2, 32, 4, 4) and {side: skip.shape[1:] for side, skip in skips.items()} == {
        32: (8, 32, 32), 16: (16, 16, 16), 8: (32, 8, 8)}
    embedded = model.embed(images())
    assert embedded.shape == (2, 32) and torch.allclose(embedded.norm(dim=1), torch.ones(2))
    # 64²: the three skips are relu2_2, relu3_3 and relu4_3, which one trained block takes on to the code;
    # 128²: relu4_3 is at 16, and the skip at 8 is the trunk's, as the own encoder's is
    at_64 = vgg_model(64)
    assert at_64.vgg_layers == {32: "relu2_2", 16: "relu3_3", 8: "relu4_3"} and list(at_64.encoder) == ["8"]
    at_128 = vgg_model(128)
    assert at_128.vgg_layers == {32: "relu3_3", 16: "relu4_3"} and list(at_128.encoder) == ["16", "8"]
    assert sorted(at_128.encode(images(1, 128))[1]) == [8, 16, 32]


def test_one_training_step_moves_the_projections_not_the_vgg_and_reaches_the_image():
    model = vgg_model().train()
    assert not model.vgg.training and not list(model.vgg.parameters())  # frozen, whatever .train() says
    vgg_before = {name: weight.clone() for name, weight in model.vgg.named_buffers()}
    projections_before = {name: weight.clone() for name, weight in model.from_vgg.named_parameters()}
    photos = images().requires_grad_(True)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    # the trainer's cycle: the translation encoded again, so the loss goes back through the VGG twice
    loss = (model(model(photos, ANIME), HUMAN) - photos).abs().mean()
    loss.backward()
    optimiser.step()
    assert photos.grad.abs().sum() > 0  # only through the VGG: this encoder has no other way in
    assert all(weight.grad is None and not weight.requires_grad for weight in model.vgg.buffers())
    assert all(torch.equal(weight, vgg_before[name]) for name, weight in model.vgg.named_buffers())
    assert all(not torch.equal(weight, projections_before[name]) for name, weight in model.from_vgg.named_parameters())
    # it moves with the model, in the trainer's memory order too
    model.to(memory_format=torch.channels_last)
    assert model.vgg.layers[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_the_vgg_is_not_saved_and_loading_rebuilds_it(tmp_path):
    model = vgg_model().eval()
    state = model.state_dict()
    assert state and not [name for name in state if name.startswith("vgg.")]
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["encoder"] == "vgg16"
    assert (tmp_path / "model.safetensors").stat().st_size < 2e6  # the VGG up to relu4_3 alone is 30 MB
    loaded = TwinGAN.from_pretrained(str(tmp_path), strict=True).eval()
    assert all(torch.equal(weight, dict(model.vgg.named_buffers())[name]) for name, weight in loaded.vgg.named_buffers())
    assert torch.equal(model(images(), ANIME), loaded(images(), ANIME))
    assert torch.equal(model.embed(images()), loaded.embed(images()))


def test_a_config_saved_before_the_option_builds_the_own_encoder(tmp_path):
    torch.manual_seed(0)
    model = TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8, 16)).eval()
    assert model.vgg is None
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config.pop("encoder") == "own"
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = TwinGAN.from_pretrained(str(tmp_path), strict=True).eval()
    assert loaded.vgg is None and torch.equal(model(images(), ANIME), loaded(images(), ANIME))
    args = argparse.Namespace(encoder="vgg16")  # a flag does not outweigh the saved model
    adopt_generator_config(args, config)
    assert args.encoder == "own"


@pytest.mark.parametrize("config, refusal", [
    (dict(resolution=16, skip_resolutions=(8,), encoder="vgg16"), "at least 32"),  # relu4_3 would be 2×2, below the code
    (dict(resolution=32, skip_resolutions=(4, 8), encoder="vgg16"), r"not \[4\]"),  # no generator block at 4
    (dict(resolution=32, skip_resolutions=(8, 64), encoder="vgg16"), r"not \[64\]"),
    (dict(resolution=32, skip_resolutions=(8,), encoder="vgg19"), "encoder must be one of"),
])
def test_what_the_vgg_cannot_serve_is_refused(config, refusal):
    with pytest.raises(ValueError, match=refusal):
        TwinGAN(width=8, max_width=32, **config)


def test_the_harness_hands_the_encoder_flag_to_the_trainer():
    _, trainer_flags = ablate.build_parser().parse_known_args(["--arm", "vgg", "--steps", "2", "--encoder", "vgg16"])
    assert trainer_flags == ["--encoder", "vgg16"]
