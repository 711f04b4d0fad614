"""TwinGAN: the domain switch, a short overfit, training state round trips, look-alike search."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cartoon.images import ImageError, to_image
from cartoon.twingan import anime_photo, square_tensor, to_anime
from cartoon.twingan.gallery import Gallery, gallery_from_upload, open_gallery
from cartoon.twingan.model import ANIME, HUMAN, DomainNorm, Discriminator, MultiScaleCritic, TwinGAN


pytestmark = pytest.mark.usefixtures("one_thread")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=float)


def tiny_model():
    torch.manual_seed(0)
    return TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8, 16))


def domain_norms(model):
    return [module for module in model.modules() if isinstance(module, DomainNorm)]


def randomise_domain_norms(model):
    with torch.no_grad():
        for norm in domain_norms(model):
            norm.scale.normal_(1.0, 0.5)
            norm.shift.normal_(0.0, 0.5)


def test_domain_switch_changes_output_with_one_shared_encoding():
    model = tiny_model().eval()
    randomise_domain_norms(model)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    human, anime = model(images, [HUMAN, ANIME])
    assert human.shape == anime.shape == images.shape
    assert (human - anime).abs().mean() > 1e-3
    # one encoding served both outputs: decoding it again per domain gives the same pictures
    code, skips = model.encode(images)
    assert torch.allclose(model.decode(code, skips, ANIME), anime, atol=1e-6)
    assert torch.allclose(model(images, HUMAN), human, atol=1e-6)


def test_strength_blends_the_domain_switch_from_reconstruction_to_translation():
    model = tiny_model().eval()
    randomise_domain_norms(model)
    face = Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8))
    human, anime = (pixels(to_anime(face, model=model, strength=s)) for s in (0.0, 1.0))
    assert np.array_equal(human, pixels(to_image(model(square_tensor(face, 32), HUMAN))))
    assert np.array_equal(anime, pixels(to_image(model(square_tensor(face, 32), ANIME))))
    # the float switch at its ends is exactly the integer one (up to 8-bit rounding)
    assert np.abs(pixels(to_anime(face, model=model, strength=1e-9)) - human).max() <= 1
    # halfway lies between the two ends, and the reverse direction runs the same blend backwards
    half = pixels(to_anime(face, model=model, strength=0.5))
    assert 0 < np.abs(half - human).mean() < np.abs(anime - human).mean()
    three_quarters = pixels(to_anime(face, model=model, strength=0.75))
    assert np.array_equal(three_quarters, pixels(to_anime(face, reverse=True, model=model, strength=0.25)))
    assert not np.array_equal(three_quarters, half)
    with pytest.raises(ValueError, match="strength"):
        to_anime(face, model=model, strength=1.5)
    with pytest.raises(ValueError, match="eval"):  # a blend must never update running statistics
        model.train()(square_tensor(face, 32), 0.5)


def test_only_the_chosen_domain_norms_learn_from_a_domain_loss():
    model = tiny_model().train()
    model(torch.rand(4, 3, 32, 32) * 2 - 1, ANIME).square().mean().backward()
    for norm in domain_norms(model):
        assert norm.scale.grad[HUMAN].abs().sum() == 0 and norm.shift.grad[HUMAN].abs().sum() == 0
        assert norm.scale.grad[ANIME].abs().sum() > 0
    assert model.from_rgb.weight.grad.abs().sum() > 0  # the shared encoder learns from either domain


def test_reconstruction_after_a_short_overfit_beats_the_untrained_model():
    model = tiny_model()
    torch.manual_seed(1)
    images = F.interpolate(torch.rand(4, 3, 8, 8) * 2 - 1, size=32, mode="bilinear", align_corners=False)

    def error():
        with torch.no_grad():
            return F.l1_loss(model.eval()(images, HUMAN), images).item()

    untrained = error()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        loss = F.l1_loss(model.train()(images, HUMAN), images)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert error() < 0.75 * untrained


def test_save_load_round_trip(tmp_path):
    model = tiny_model().eval()
    randomise_domain_norms(model)
    model.save_pretrained(tmp_path)
    loaded = TwinGAN.from_pretrained(str(tmp_path), strict=True).eval()
    assert loaded.skip_resolutions == (8, 16) and loaded.resolution == 32
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(model(images, ANIME), loaded(images, ANIME))
    assert torch.equal(model.embed(images), loaded.embed(images))


def test_only_the_blocks_at_the_skip_resolutions_join_encoder_features():
    # saved configs name their skips (the 64² skips-8 arm's: 8 alone), and every one builds as it was saved
    model = TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8,))
    assert model.generator["8"].conv1.in_channels > model.start.out_channels
    assert model.generator["16"].conv1.in_channels == model.generator["8"].conv1.out_channels
    assert model.generator["32"].conv1.in_channels == model.generator["16"].conv1.out_channels
    assert list(model.encode(torch.zeros(1, 3, 32, 32))[1]) == [8]


def test_domain_skips_start_as_the_shared_skips_and_then_change_only_their_own_domain(tmp_path):
    shared = tiny_model().eval()
    randomise_domain_norms(shared)
    viewed = TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8, 16), domain_skips=True).eval()
    missing, unexpected = viewed.load_state_dict(shared.state_dict(), strict=False)
    assert not unexpected and missing and all(".skip_view.views." in name for name in missing)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    # identity views: the same translation, at either end and blended
    for domain in (HUMAN, ANIME, 0.4):
        assert torch.allclose(viewed(images, domain), shared(images, domain), atol=1e-5)
    with torch.no_grad():
        for block in viewed.generator.values():
            if block.skip_view is not None:
                block.skip_view.views[ANIME].weight.normal_()
    assert torch.allclose(viewed(images, HUMAN), shared(images, HUMAN), atol=1e-5)
    assert (viewed(images, ANIME) - shared(images, ANIME)).abs().mean() > 1e-3
    viewed.save_pretrained(tmp_path)
    loaded = TwinGAN.from_pretrained(str(tmp_path), strict=True).eval()
    assert loaded.domain_skips and torch.equal(loaded(images, ANIME), viewed(images, ANIME))


def test_the_shipped_config_loads_and_a_removed_switch_is_refused(tmp_path):
    # weights/twingan/config.json names its switch ("norm": "batch"), as every export does
    shipped = TwinGAN.from_pretrained(str(Path(__file__).parent.parent / "weights" / "twingan"), strict=True).eval()
    with torch.no_grad():
        assert shipped(torch.zeros(1, 3, 128, 128), ANIME).shape == (1, 3, 128, 128)
    for removed in ({"norm": "layer-instance"}, {"norm": "demodulated"}, {"norm": "adalin"}, {"attention": "cam"}):
        with pytest.raises(ValueError, match="lost and was removed"):
            TwinGAN(resolution=32, **removed)
    # an export of a removed design says so on loading, rather than loading half its weights
    tiny_model().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "attention": "cam"}))
    with pytest.raises(ValueError, match="attention='cam'"):
        TwinGAN.from_pretrained(str(tmp_path))


def test_a_wide_whole_picture_keeps_its_edges_unstretched():
    """The model sees squares; a 3:1 picture must not come back as its stretched middle third."""
    photo = np.full((80, 240, 3), 200, np.uint8)
    photo[:, :48] = 30  # a dark band at the left edge, outside any centred square
    result = anime_photo(Image.fromarray(photo), mode="whole", strength=0.0)  # reconstruction: keeps tones
    assert result.image.size == (240, 80)
    assert any("scaled up" in note for note in result.notes)  # the softness is explained
    columns = pixels(result.image.convert("L")).mean(axis=0)
    # the band is still there, and still ends at column 48: dark up to it, light from just past it
    assert columns[4:44].max() < 80 and columns[56:].min() > 150, columns.round()


def test_shapes_and_bad_sizes():
    model = tiny_model().eval()
    assert Discriminator(32, 8, 32)(torch.zeros(3, 3, 32, 32)).shape == (3,)
    assert MultiScaleCritic(32, 8, 32, scales=2)(torch.zeros(3, 3, 32, 32)).shape == (3, 2)
    with pytest.raises(ValueError, match="below 8"):
        MultiScaleCritic(32, 8, 32, scales=4)
    embedding = model.embed(torch.rand(3, 3, 32, 32) * 2 - 1)
    assert embedding.shape == (3, model.embedding_size)
    assert torch.allclose(embedding.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="32×32"):
        model(torch.zeros(1, 3, 64, 64), ANIME)
    with pytest.raises(ValueError, match="power of two"):
        TwinGAN(resolution=100)
    with pytest.raises(ValueError, match="eval"):  # a batch would update both domains' running statistics
        model.train()(torch.zeros(2, 3, 32, 32), 0.5)
    model.eval()
    assert to_anime(Image.new("RGB", (50, 70), "pink"), model=model).size == (32, 32)


def face_like(seed: int) -> Image.Image:
    """Distinct smooth pictures: a few random blobs of colour."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((48, 48), Image.Resampling.BICUBIC)


@pytest.fixture
def gallery_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "gallery"
    for group, seeds in (("anime", range(0, 6)), ("human", range(6, 12))):
        (folder / group).mkdir(parents=True)
        for seed in seeds:
            face_like(seed).save(folder / group / f"{seed:02d}.png")
    face_like(99).save(folder / "loose.png")
    return folder


def test_each_gallery_image_finds_itself_first(gallery_folder):
    model = tiny_model().eval()
    gallery = open_gallery(gallery_folder, model)
    assert set(gallery.indices) == {"anime", "human", "other"}
    for path in sorted(gallery_folder.rglob("*.png")):
        matches = gallery.search(model, Image.open(path).convert("RGB"), k=3)
        group = path.parent.name if path.parent != gallery_folder else "other"
        assert matches[group][0].path == path
        assert matches[group][0].distance < 1e-4
        assert [m.distance for m in matches[group]] == sorted(m.distance for m in matches[group])
        assert len(matches["anime"]) == len(matches["human"]) == 3 and len(matches["other"]) == 1


def test_embedding_cache_follows_file_changes(gallery_folder, monkeypatch):
    model = tiny_model().eval()
    gallery = open_gallery(gallery_folder, model)
    embedded = []
    original = Gallery.refresh.__globals__["embed_images"]
    monkeypatch.setitem(Gallery.refresh.__globals__, "embed_images", lambda m, images: embedded.append(len(images)) or original(m, images))

    again = Gallery(gallery_folder, model, gallery.cache_file)  # a new process would do this
    assert embedded == [] and len(again.paths) == 13
    face_like(50).save(gallery_folder / "human" / "new.png")
    (gallery_folder / "anime" / "00.png").unlink()
    assert gallery.is_stale()
    gallery = open_gallery(gallery_folder, model)
    assert embedded == [1]  # only the new file was embedded
    assert gallery_folder / "human" / "new.png" in gallery.paths
    assert gallery_folder / "anime" / "00.png" not in gallery.paths


def test_bad_galleries_get_clear_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    model = tiny_model().eval()
    with pytest.raises(ImageError, match="does not exist"):
        open_gallery(tmp_path / "missing", model)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no images"):
        open_gallery(tmp_path / "empty", model)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageError, match="zip"):
        gallery_from_upload([tmp_path / "notes.txt"])
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(ImageError, match="zip"):
        gallery_from_upload([tmp_path / "broken.zip"])

    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "a.png").write_bytes(b"\x89PNG but cut short")
    with pytest.raises(ImageError, match="None of the 1 files"):
        open_gallery(tmp_path / "unreadable", model)

    # an intact directory over a damaged compressed stream: the error comes only when it is read
    face_like(3).save(tmp_path / "d.bmp")  # uncompressed pixels, so the deflate stream is long
    with zipfile.ZipFile(tmp_path / "damaged.zip", "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(tmp_path / "d.bmp", "d.bmp")
    data = bytearray((tmp_path / "damaged.zip").read_bytes())
    data[60:200] = bytes(140)  # inside the member's compressed data, after its 30 + 5-byte header
    (tmp_path / "damaged.zip").write_bytes(bytes(data))
    with pytest.raises(ImageError, match="not a readable zip archive"):
        gallery_from_upload([tmp_path / "damaged.zip"])


def test_uploaded_zip_keeps_groups_and_flattens_other_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "faces.zip"
    face_like(1).save(tmp_path / "a.png")
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(tmp_path / "a.png", "set/anime/a.png")
        zipped.write(tmp_path / "a.png", "../../escape/b.png")
        zipped.writestr("readme.txt", "not an image")
    folder = gallery_from_upload([archive])
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == ["anime/a.png", "b.png"]
    assert gallery_from_upload([archive]) == folder  # same content, same folder, cached embeddings reused


def test_uploaded_folder_keeps_its_images_and_passes_over_other_files(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    face_like(2).save(tmp_path / "c.jpg")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    folder = gallery_from_upload(None, [tmp_path / "c.jpg", tmp_path / ".DS_Store"])
    assert [p.name for p in folder.iterdir()] == ["c.jpg"]
    with pytest.raises(ImageError, match="Upload images"):
        gallery_from_upload(None, [tmp_path / ".DS_Store"])


def test_default_gallery_is_made_by_the_projects_own_models(tmp_path, monkeypatch):
    import cartoon.hub
    from cartoon.acgan.model import Generator
    from cartoon.twingan.gallery import default_gallery

    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    avatars = Generator(noise_dim=16, width=16, blocks=1).eval()
    monkeypatch.setattr(cartoon.hub, "load_model", lambda name, *a, **k: avatars if name == "acgan" else None)
    model = tiny_model().eval()
    folder = default_gallery(model, size=4)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == [
        f"{group}/{group}_{i:03d}.png" for group in ("anime", "human") for i in range(4)
    ]
    assert Image.open(folder / "human" / "human_000.png").size == (32, 32)
    assert default_gallery(model, size=4) == folder  # made once, then reused
    matches = open_gallery(None, model).search(model, Image.open(folder / "anime" / "anime_002.png"), k=2)
    assert matches["anime"][0].path == folder / "anime" / "anime_002.png"


def test_missing_avatar_weights_give_a_clear_message(tmp_path, monkeypatch):
    import cartoon.hub
    from cartoon.twingan.gallery import default_gallery

    monkeypatch.setenv("CARTOON_CACHE", str(tmp_path / "cache"))

    def no_weights(name, *args, **kwargs):
        raise FileNotFoundError("no weights")

    monkeypatch.setattr(cartoon.hub, "load_model", no_weights)
    with pytest.raises(ImageError, match="choose a gallery folder"):
        default_gallery(tiny_model().eval())


def test_api_reads_paths_and_rejects_non_images(tmp_path):
    model = tiny_model().eval()
    face_like(3).save(tmp_path / "face.png")
    assert to_anime(tmp_path / "face.png", reverse=True, model=model).size == (32, 32)
    (tmp_path / "fake.png").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="not an image"):
        to_anime(tmp_path / "fake.png", model=model)
    with pytest.raises(ImageError):
        to_anime(None, model=model)


def test_a_blend_is_each_end_at_its_ends_and_between_them_between(tmp_path):
    from cartoon.twingan.blend import blend, main as blend_main

    torch.manual_seed(0)
    a, b = (TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8, 16)).eval() for _ in range(2))
    state_a, state_b = ({k: v.clone() for k, v in m.state_dict().items()} for m in (a, b))
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(blend(a, b, 0.0)(images, 1), a(images, 1))
        assert torch.allclose(blend(a, b, 1.0)(images, 1), b(images, 1), atol=1e-6)
    middle = blend(a, b, 0.25).state_dict()
    assert all(torch.equal(v, state_a[k]) for k, v in a.state_dict().items())  # the ends are left as they were
    for key, value in state_a.items():
        if value.is_floating_point():
            assert torch.allclose(middle[key], 0.75 * value + 0.25 * state_b[key], atol=1e-6)
    with pytest.raises(ValueError, match="one design"):
        blend(a, TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8,)), 0.5)
    a.save_pretrained(str(tmp_path / "a"))
    b.save_pretrained(str(tmp_path / "b"))
    assert blend_main([str(tmp_path / "a"), str(tmp_path / "b"), "--share", "0.25", "--out", str(tmp_path / "ab")]) == 0
    saved = TwinGAN.from_pretrained(str(tmp_path / "ab")).state_dict()
    assert all(torch.equal(saved[k], v) for k, v in middle.items())


def test_a_layer_swap_takes_the_coarse_layers_from_one_model_and_the_fine_from_the_other(tmp_path):
    from cartoon.twingan.blend import blend, main as blend_main, working_side

    torch.manual_seed(0)
    a, b = (TwinGAN(resolution=32, width=8, max_width=32, skip_resolutions=(8, 16)).eval() for _ in range(2))
    swapped = blend(a, b, 0.0, coarse_share=1.0, coarse_to=8).state_dict()
    sides = {working_side(key, 32) for key in swapped}
    assert sides == {4, 8, 16, 32}  # every weight is placed, the code at 4
    for key, value in swapped.items():
        source = b if working_side(key, 32) <= 8 else a
        assert torch.equal(value, source.state_dict()[key]), key
    assert torch.equal(swapped["generator.8.conv1.weight"], b.state_dict()["generator.8.conv1.weight"])
    assert torch.equal(swapped["generator.16.conv1.weight"], a.state_dict()["generator.16.conv1.weight"])
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # a swap over every layer is the other model
        assert torch.allclose(blend(a, b, 0.0, coarse_share=1.0, coarse_to=32)(images, 1), b(images, 1), atol=1e-6)
    with pytest.raises(ValueError, match="coarse_share"):
        blend(a, b, 0.0, coarse_share=1.5)
    a.save_pretrained(str(tmp_path / "a"))
    b.save_pretrained(str(tmp_path / "b"))
    assert blend_main([str(tmp_path / "a"), str(tmp_path / "b"), "--share", "0", "--coarse-share", "1", "--coarse-to", "8",
                       "--out", str(tmp_path / "swap")]) == 0
    saved = TwinGAN.from_pretrained(str(tmp_path / "swap")).state_dict()
    assert all(torch.equal(saved[k], v) for k, v in swapped.items())
