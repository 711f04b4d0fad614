"""The style-based anime face generator of the Latent Lab (issue 42): `model` and its trainer `train`."""
