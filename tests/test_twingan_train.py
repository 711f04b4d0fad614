"""TwinGAN's training script on two tiny folders: its steps, terms, fine-tuning and generator designs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cartoon import data
from cartoon.augment import diff_augment
from cartoon.training import linear_decay
from cartoon.twingan.losses import critic_loss
from cartoon.twingan.checkpoint import with_domain_skips
from cartoon.twingan.model import ANIME, LAST_WITH_VGG_ENCODER, Discriminator, TwinGAN
from cartoon.twingan.train import main as train_main
from cartoon.vgg import VGG16Features

TINY = ["--resolution", "32", "--width", "8", "--max-width", "32", "--batch-size", "2",
        "--workers", "0", "--threads", "1", "--log-every", "1", "--sample-every", "2", "--save-every", "2",
        "--precision", "bf16", "--channels-last"]
# what a --resume-from names besides the export: the arguments that belong to a machine are not carried
MACHINE = ["--workers", "0", "--threads", "1"]

NORM_BATCHES = ["--norm-batches", "3", "--batch-size", "2", "--threads", "1"]


def write_faces(folder, count, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((40, 40)).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("twingan")
    write_faces(root / "photos", 4, 0)
    write_faces(root / "anime", 4, 1)
    run = root / "run"
    folders = ["--photos", str(root / "photos"), "--anime", str(root / "anime")]
    common = TINY + ["--run-dir", str(run)]
    train_main(common + folders + ["--steps", "2"])
    with pytest.MonkeyPatch.context() as patch:
        # the default folders do not exist: a resume that named no folders and went on anyway drew on its own
        for name in ("SELFIE_PHOTOS", "UTKFACE", "SELFIE_ANIME"):
            patch.setattr(data, name, root / "absent")
        train_main(common + ["--steps", "4", "--resume", "--content-weight", "1", "--cycle-content-weight", "1", "--vgg-size", "16",
                             "--lr-decay-from", "2"])
    train_main(["--run-dir", str(run), "--export", str(root / "export")] + NORM_BATCHES + folders)
    yield root
    torch.set_num_threads(threads)


def test_training_logs_samples_and_resumes(trained):
    records = [json.loads(line) for line in (trained / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # the resumed run went on from step 2
    # constant, then halfway down from step 2 to 0 at step 4: step 4's update used half the rate
    assert [r["lr"] for r in records] == [2e-4, 2e-4, 2e-4, 1e-4]
    # every loss finite under bfloat16 autocast, the models trained in channels-last order
    assert all(np.isfinite(v) for r in records for k, v in r.items() if k.startswith("loss_"))
    payload = torch.load(trained / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["args"]["precision"] == "bf16" and payload["args"]["channels_last"]
    assert all(payload[key][name].is_contiguous(memory_format=torch.channels_last) and not payload[key][name].is_contiguous()
               for key, name in (("generator", "encoder.32.conv1.weight"), ("ema", "encoder.32.conv1.weight"), ("critics", "0.features.0.weight_orig")))
    # the content terms are off by default and on after the resume that asked for them
    assert [r["loss_content"] > 0 for r in records] == [False, False, True, True]
    assert [r["loss_cycle_content"] > 0 for r in records] == [False, False, True, True]
    assert sorted(p.name for p in (trained / "run" / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]


@pytest.mark.parametrize("content, cycle_content, passes", [("1", "0", 2), ("0", "1", 2), ("1", "1", 3)])
def test_the_content_terms_share_one_vgg_pass_over_the_photos(trained, monkeypatch, content, cycle_content, passes):
    batches, whole_network = [], VGG16Features.forward

    def counted_forward(self, images):
        batches.append(len(images))
        return whole_network(self, images)

    monkeypatch.setattr(VGG16Features, "forward", counted_forward)
    train_main(TINY + ["--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--vgg-size", "16",
                       "--run-dir", str(trained / f"content-{content}-{cycle_content}"), "--steps", "1",
                       "--content-weight", content, "--cycle-content-weight", cycle_content])
    # a batch of 2 photos, then each term's images held to them: the anime translations, the round trips
    assert batches == [2] * passes


def test_fine_tuning_warms_new_critics_up_on_the_saved_generator_then_trains_it(trained):
    tuned_run, exported = trained / "tuned", trained / "export"
    # size flags unlike the saved model's: its config decides the generator's size
    flags = TINY[:2] + ["--width", "4", "--max-width", "16"] + TINY[6:] + [
        "--critic-width", "4", "--critic-max-width", "8", "--run-dir", str(tuned_run),
        "--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--critic-warmup", "2",
        "--lr", "1e-4", "--critic-lr", "5e-4"]
    train_main(flags + ["--init-from", str(exported), "--steps", "2"])
    saved_model = TwinGAN.from_pretrained(str(exported))
    saved = saved_model.state_dict()
    warmed = torch.load(tuned_run / "checkpoint.pt", map_location="cpu", weights_only=True)
    config = json.loads((exported / "config.json").read_text())
    assert warmed["config"] == {key: config.get(key) for key in ("resolution", "width", "max_width", "skip_resolutions", "colour_classes", "domain_skips")}
    assert warmed["init_from"] == str(exported)
    # two critic steps; the average untouched, and the generator's weights (its batch-norm running
    # statistics follow the batches, as in any forward pass in training mode)
    assert all(torch.equal(warmed["ema"][name], saved[name]) for name in saved)
    assert all(torch.equal(warmed["generator"][name], saved[name]) for name, _ in saved_model.named_parameters())
    assert not warmed["opt_g"]["state"]
    assert (warmed["opt_g"]["param_groups"][0]["lr"], warmed["opt_d"]["param_groups"][0]["lr"]) == (1e-4, 5e-4)
    assert [int(s["step"]) for s in warmed["opt_d"]["state"].values()] == [2] * len(warmed["opt_d"]["state"])
    assert warmed["critics"]["0.score.weight_orig"].shape == (1, 8 * 16)  # the critics' own widths

    train_main(flags + ["--resume", "--steps", "3"])  # no --init-from: the run remembers it
    tuned = torch.load(tuned_run / "checkpoint.pt", map_location="cpu", weights_only=True)
    name = "to_rgb.weight"
    assert not torch.equal(tuned["generator"][name], saved[name])
    # the average took the full decay's share of the step (0.001), not the 0.75 that the warm-up
    # meant for a random init would give at step 2 (up to float32 rounding of weights near 1)
    moved = (tuned["ema"][name] - saved[name]).double()
    stepped = (tuned["generator"][name] - saved[name]).double()
    assert moved.norm() / stepped.norm() == pytest.approx(0.001, rel=0.1)


def test_fine_tuning_with_frozen_statistics_trains_what_inference_makes_and_exports_it(trained):
    tuned_run, exported, again = trained / "frozen", trained / "export", trained / "frozen-export"
    folders = ["--photos", str(trained / "photos"), "--anime", str(trained / "anime")]
    flags = TINY + folders + ["--run-dir", str(tuned_run)]
    train_main(flags + ["--init-from", str(exported), "--freeze-norm-statistics", "--steps", "2"])
    train_main(flags + ["--resume", "--steps", "3"])  # no flag: the run remembers it
    saved = TwinGAN.from_pretrained(str(exported)).state_dict()
    payload = torch.load(tuned_run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["frozen_statistics"] and payload["step"] == 3
    statistics = [name for name in saved if name.endswith(("running_mean", "running_var"))]
    assert all(torch.equal(payload[key][name], saved[name]) for key in ("generator", "ema") for name in statistics)
    assert not torch.equal(payload["generator"]["to_rgb.weight"], saved["to_rgb.weight"])
    # export writes the statistics the run trained with, not a fresh estimate
    train_main(["--run-dir", str(tuned_run), "--export", str(again)] + NORM_BATCHES + folders)
    written = TwinGAN.from_pretrained(str(again)).state_dict()
    assert all(torch.equal(tensor, payload["ema"][name]) for name, tensor in written.items())


def test_freezing_statistics_on_a_resume_keeps_the_critics_and_starts_from_what_export_ships(trained):
    fork = trained / "frozen-fork"
    fork.mkdir()
    shutil.copy(trained / "run" / "checkpoint.pt", fork)
    before = torch.load(fork / "checkpoint.pt", map_location="cpu", weights_only=True)
    train_main(TINY + ["--run-dir", str(fork), "--resume", "--freeze-norm-statistics", "--norm-batches", "3", "--steps", "5"])
    payload = torch.load(fork / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["frozen_statistics"] and payload["step"] == 5
    # the critics went on, their optimiser's count with them, rather than starting afresh
    assert all(int(state["step"]) == 5 for state in payload["opt_d"]["state"].values())
    # both models hold the statistics the fixture's export estimated for the step-4 average (over the
    # run's own folders, its batch size, as many batches), unchanged by the step trained after
    exported = TwinGAN.from_pretrained(str(trained / "export")).state_dict()
    statistics = [name for name in exported if name.endswith(("running_mean", "running_var"))]
    assert all(torch.equal(payload[key][name], exported[name]) for key in ("generator", "ema") for name in statistics)
    assert not torch.equal(payload["generator"]["to_rgb.weight"], before["generator"]["to_rgb.weight"])
    # a frozen run resumed with the flag again keeps its statistics: no second estimate for the moved average
    train_main(TINY + ["--run-dir", str(fork), "--resume", "--freeze-norm-statistics", "--norm-batches", "3", "--steps", "6"])
    later = torch.load(fork / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert later["step"] == 6 and all(torch.equal(later["ema"][name], exported[name]) for name in statistics)


def test_diff_augment_changes_each_image_keeps_shape_and_gradient():
    torch.manual_seed(0)
    images = (torch.rand(3, 3, 32, 32) * 2 - 1).requires_grad_(True)
    assert diff_augment(images, "none") is images
    for policy in ("color", "translation", "cutout"):
        changed = (diff_augment(images, policy) - images).abs().flatten(1).amax(1)
        assert (changed > 0.01).all(), policy  # every image in the batch is augmented
    cut = diff_augment(images, "cutout")
    zeroed = (cut == 0).all(1).flatten(1).float().mean(1)
    assert ((zeroed > 0.05) & (zeroed <= 0.25)).all()  # a square of at most half the side, clipped at the edges
    augmented = diff_augment(images, "color,translation,cutout")
    assert augmented.shape == images.shape
    augmented.sum().backward()
    assert images.grad.abs().sum() > 0


def test_learning_rate_decay_is_constant_then_linear_to_zero():
    assert [linear_decay(step, 6, 10) for step in range(4, 12)] == [1, 1, 1, 0.75, 0.5, 0.25, 0, 0]
    assert linear_decay(10**6, None, 10) == 1  # no start: the rate never decays


def test_a_critic_learns_to_score_real_images_above_generated_ones():
    torch.manual_seed(0)
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    fake = real.flip(0)[:, [2, 0, 1]] * 0.7 + 0.3  # generated stand-ins: other faces, shifted in colour
    critic = Discriminator(32, 8, 32)
    optimiser = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.99))
    losses = []
    for _ in range(30):
        loss = critic_loss(critic, real, fake, lambda x: x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        assert critic(real).min() > critic(fake).max()


def test_the_landmark_term_measures_translations_of_faces_only_and_needs_the_detectors_resolution(tmp_path):
    faces, noise = tmp_path / "faces", tmp_path / "noise"
    faces.mkdir()
    held_out = data.split(data.UTKFACE)[1][:2]
    assert len(held_out) == 2, "the test needs the project's data (see ../shared/data/README.md)"
    for path in held_out:
        shutil.copy(path, faces)
    write_faces(noise, 2, 0)
    write_faces(tmp_path / "anime", 2, 1)
    logged = {}
    for photos in (faces, noise):
        run = tmp_path / f"run-{photos.name}"
        train_main(TINY + ["--resolution", "64", "--photos", str(photos), "--anime", str(tmp_path / "anime"),
                           "--run-dir", str(run), "--steps", "1", "--landmark-weight", "1"])
        logged[photos.name] = json.loads((run / "log.jsonl").read_text().splitlines()[-1])["loss_landmark"]
    # an untrained translation misplaces the faces' landmarks; photos without a face give the term nothing to hold
    assert logged["faces"] > 0 and logged["noise"] == 0
    with pytest.raises(SystemExit, match="resolution of at least 64"):
        train_main(TINY + ["--photos", str(faces), "--anime", str(tmp_path / "anime"), "--run-dir", str(tmp_path / "small"),
                           "--steps", "1", "--landmark-weight", "1"])


def test_a_model_saved_with_the_removed_vgg16_encoder_is_refused_naming_the_commit_that_builds_it(trained, tmp_path):
    exported = trained / "export"
    (tmp_path / "vgg").mkdir()
    config = {**json.loads((exported / "config.json").read_text()), "encoder": "vgg16"}
    (tmp_path / "vgg" / "config.json").write_text(json.dumps(config))
    (tmp_path / "vgg" / "model.safetensors").write_bytes((exported / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match=f"encoder='vgg16'.*commit {LAST_WITH_VGG_ENCODER}"):
        TwinGAN.from_pretrained(str(tmp_path / "vgg"))
    with pytest.raises(SystemExit, match=f"commit {LAST_WITH_VGG_ENCODER} still builds the frozen VGG16 encoder"):
        train_main(TINY + ["--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--run-dir", str(tmp_path / "run"),
                           "--init-from", str(tmp_path / "vgg"), "--steps", "1"])
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    # a config saved while the option was there names the own encoder, one saved before it names none: both build it
    saved_then = json.loads((Path(__file__).resolve().parent.parent / "weights/twingan-harness/baseline-64/config.json").read_text())
    assert saved_then["encoder"] == "own"
    assert TwinGAN(**saved_then).state_dict().keys() == TwinGAN(**{k: v for k, v in saved_then.items() if k != "encoder"}).state_dict().keys()


def test_fine_tuning_refuses_a_model_with_other_skips_than_the_default(trained, tmp_path):
    # only the removed --skip-resolutions made such a model: its fine-tune would record the skips and could not resume
    TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8,)).save_pretrained(tmp_path / "coarser")
    with pytest.raises(SystemExit, match="coarser was trained with --skip-resolutions 8: .*commit 6cc29a0 still trains them"):
        train_main(TINY + ["--photos", str(trained / "photos"), "--anime", str(trained / "anime"), "--run-dir", str(tmp_path / "run"),
                           "--init-from", str(tmp_path / "coarser"), "--steps", "1"])
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_run_with_domain_skips_resumes_and_exports_with_them(trained, tmp_path):
    folders = ["--photos", str(trained / "photos"), "--anime", str(trained / "anime")]
    run = ["--run-dir", str(tmp_path / "run")]
    train_main(TINY + folders + run + ["--domain-skips", "--steps", "1"])
    train_main(TINY + run + ["--resume", "--steps", "2"])  # the flag not given again: the checkpoint says the model
    payload = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["config"]["domain_skips"] and any(".skip_view.views.1." in name for name in payload["generator"])
    train_main(run + ["--export", str(tmp_path / "export")] + NORM_BATCHES + folders)
    exported = TwinGAN.from_pretrained(str(tmp_path / "export"), strict=True)
    assert exported.domain_skips and exported.generator["8"].skip_view is not None


def test_a_resume_that_adds_domain_skips_goes_on_from_the_model_it_saved(trained, tmp_path):
    payload = torch.load(trained / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert not payload["config"].get("domain_skips")
    converted = with_domain_skips(payload)
    saved, viewed = TwinGAN(**payload["config"]).eval(), TwinGAN(**converted["config"]).eval()
    saved.load_state_dict(payload["ema"])
    viewed.load_state_dict(converted["ema"])
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert viewed.domain_skips and torch.allclose(viewed(images, ANIME), saved(images, ANIME), atol=1e-5)
    # every saved parameter keeps its Adam moments in its new place; the views start without any
    adam = torch.optim.Adam(viewed.parameters())
    adam.load_state_dict(converted["opt_g"])
    names = [name for name, _ in saved.named_parameters()]
    old = {names[index]: moments for index, moments in payload["opt_g"]["state"].items()}
    for name, parameter in viewed.named_parameters():
        if ".skip_view." in name:
            assert parameter not in adam.state
        else:
            assert all(torch.equal(adam.state[parameter][key], old[name][key]) for key in ("exp_avg", "exp_avg_sq", "step"))
    # the trainer does the same on a resume asked for the views, and the run goes on with them
    (tmp_path / "run").mkdir()
    shutil.copy(trained / "run" / "checkpoint.pt", tmp_path / "run")
    train_main(TINY + ["--run-dir", str(tmp_path / "run"), "--resume", "--domain-skips", "--steps", "5"])
    resumed = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert resumed["step"] == 5 and resumed["config"]["domain_skips"]
    view = resumed["generator"]["generator.8.skip_view.views.1.weight"][:, :, 0, 0]
    assert not torch.equal(view, torch.eye(len(view)))  # the step trained the views
    # so does a resume from an export's training state, the way a new machine goes on
    train_main(TINY + ["--run-dir", str(tmp_path / "elsewhere"), "--resume-from", str(trained / "export"), "--domain-skips", "--steps", "5"])
    assert torch.load(tmp_path / "elsewhere" / "checkpoint.pt", map_location="cpu", weights_only=True)["config"]["domain_skips"]


def test_fine_tuning_with_domain_skips_adds_them_to_the_saved_model(trained, tmp_path):
    folders = ["--photos", str(trained / "photos"), "--anime", str(trained / "anime")]
    train_main(TINY + folders + ["--run-dir", str(tmp_path / "run"), "--init-from", str(trained / "export"), "--domain-skips",
                                 "--critic-warmup", "1", "--steps", "1"])
    tuned = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    saved = TwinGAN.from_pretrained(str(trained / "export")).state_dict()
    # one critic step only: the generator is the saved one, with the views at the identity
    assert tuned["config"]["domain_skips"] and all(torch.equal(tuned["ema"][name], saved[name]) for name in saved)
    view = tuned["ema"]["generator.8.skip_view.views.1.weight"][:, :, 0, 0]
    assert torch.equal(view, torch.eye(len(view)))
