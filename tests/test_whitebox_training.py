"""White-box representations and training: colouring rules, and short runs that learn."""

import json

import numpy as np
import torch
from PIL import Image

from cartoon.training import Run
from cartoon.whitebox import pretrain, representations as rep, train
from cartoon.whitebox.model import Generator


def test_adaptive_colouring_paints_flat_regions_their_mean_and_busy_ones_their_median():
    image = np.zeros((4, 8, 3))
    labels = np.zeros((4, 8), dtype=int)
    labels[:, 4:] = 1
    # region 0: nearly flat, skewed so that its mean and median differ slightly
    image[:, :4] = 0.50
    image[0, 0] = 0.56
    # region 1: busy (std far above the threshold) with a skewed distribution
    busy = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.6])
    image[:, 4:] = busy.reshape(4, 4)[..., None]
    painted = rep.adaptive_colouring(image, labels)
    assert np.allclose(painted[:, :4], image[:, :4].mean(axis=(0, 1)))
    assert np.allclose(painted[:, 4:], np.median(busy))
    assert not np.isclose(np.median(busy), busy.mean())


def test_structure_paints_superpixels_in_flat_colours():
    torch.manual_seed(0)
    quadrants = torch.tensor([[-0.8, 0.2, 0.6], [0.5, -0.5, 0.0], [0.9, 0.9, -0.9], [-0.2, -0.7, 0.8]])
    image = torch.empty(2, 3, 48, 40)
    for i, (rows, cols) in enumerate([(slice(0, 24), slice(0, 20)), (slice(0, 24), slice(20, 40)),
                                      (slice(24, 48), slice(0, 20)), (slice(24, 48), slice(20, 40))]):
        image[:, :, rows, cols] = quadrants[i].view(1, 3, 1, 1)
    image += 0.05 * torch.randn_like(image)
    for method in ("slic", "felzenszwalb"):
        painted = rep.structure(image, method, segments=20)
        assert painted.shape == image.shape
        colours = torch.unique(painted[0].reshape(3, -1).T, dim=0)
        assert 4 <= len(colours) <= 60  # one colour per region, at least one region per quadrant
        # the noise is gone and each quadrant keeps its own colour
        top_left = painted[:, :, 4:20, 4:16]
        assert top_left.std(dim=(2, 3)).max() < 0.02
        assert (top_left.mean(dim=(2, 3)) - quadrants[0]).abs().max() < 0.05


def test_texture_uses_one_random_grey_for_all_batches():
    photo = torch.rand(2, 3, 8, 8) * 2 - 1
    generator = torch.Generator().manual_seed(0)
    first, second = rep.texture(photo, photo.clone(), generator=generator)
    assert first.shape == (2, 1, 8, 8)
    assert torch.equal(first, second)
    grey = torch.full((1, 3, 4, 4), 0.3)
    assert torch.allclose(rep.texture(grey)[0], torch.full((1, 1, 4, 4), 0.3))  # weights sum to 1


def test_surface_smooths():
    torch.manual_seed(0)
    noisy = torch.rand(1, 3, 32, 32) * 2 - 1
    assert rep.surface(noisy).std() < 0.7 * noisy.std()


def make_images(folder, count, seed):
    """Synthetic photos: smooth colour gradients with a bright disc (no dataset needed)."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:40, 0:40] / 40.0
    for i in range(count):
        colour = rng.uniform(0, 1, 3)
        image = (colour * (0.4 + 0.6 * x[..., None]) + 0.2 * y[..., None]).clip(0, 1)
        cy, cx = rng.uniform(10, 30, 2)
        image[(np.mgrid[0:40, 0:40][0] - cy) ** 2 + (np.mgrid[0:40, 0:40][1] - cx) ** 2 < 60] = rng.uniform(0.6, 1, 3)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def read_log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


COMMON = ["--size", "32", "--batch-size", "2", "--workers", "0", "--threads", "1", "--channels", "4", "--blocks", "1"]


def test_pretraining_learns_to_reconstruct_and_resumes(tmp_path):
    photos = make_images(tmp_path / "photos", 6, seed=0)
    run = tmp_path / "pretrain"
    args = ["--photos", str(photos), "--run-dir", str(run), "--lr", "3e-3", "--log-every", "5", "--save-every", "20"]
    pretrain.main(args + COMMON + ["--steps", "40", "--sample-every", "40"])
    log = read_log(run)
    assert log[-1]["reconstruction"] < 0.5 * log[0]["reconstruction"]
    assert (run / "samples" / "step_000040.png").is_file()

    pretrain.main(args + COMMON + ["--steps", "50", "--sample-every", "50", "--resume"])
    assert [r["step"] for r in read_log(run)][-2:] == [45, 50]  # continued, not restarted


def test_full_training_lowers_the_generator_loss_and_exports(tmp_path):
    photos = make_images(tmp_path / "photos", 6, seed=0)
    cartoons = make_images(tmp_path / "cartoons", 6, seed=1)
    run = tmp_path / "train"
    args = ["--photos", str(photos), "--cartoons", str(cartoons), "--run-dir", str(run), "--segments", "10",
            "--lr", "2e-3", "--log-every", "5", "--steps", "20", "--sample-every", "20", "--save-every", "20"]
    train.main(args + COMMON)
    log = read_log(run)
    assert log[-1]["content"] < log[0]["content"]
    assert log[-1]["total"] < log[0]["total"]
    assert (run / "samples" / "step_000020.png").is_file()

    train.main(args + COMMON + ["--export", str(tmp_path / "export"), "--export-radius", "3", "--export-eps", "0.05"])
    exported = Generator.from_pretrained(str(tmp_path / "export"))
    assert exported(torch.zeros(1, 3, 20, 20)).shape == (1, 3, 20, 20)
    assert (exported.radius, exported.eps) == (3, 0.05)  # the inference filter, not the training one
    trained = Generator(channels=4, blocks=1, radius=3, eps=0.05)
    Run(run, main=False).load_checkpoint("cpu", ema=trained)
    photo = torch.rand(1, 3, 20, 20) * 2 - 1
    assert torch.equal(exported(photo), trained(photo))
