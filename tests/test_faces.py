"""The face pipeline: converted RetinaFace weights, detection, alignment, paste-back, landmark loss.

Real faces come from the project's held-out splits in ../shared/data, read at test time only.
"""

import numpy as np
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cartoon import data
from cartoon.faces import LandmarkLoss, align_face, apply_to_faces, detect_faces, paste_faces
from cartoon.faces import detect
from cartoon.faces.align import FRAMINGS
from cartoon.faces.loss import point_offsets, pose_offsets
from cartoon.faces.retinaface import BGR_MEAN, build_network, convert_onnx, onnx_bytes, read_onnx
from cartoon.images import to_tensor


def held_out(folder, count):
    files = data.split(folder)[1][:count]
    if len(files) < count:
        pytest.fail(f"the tests need the project's data in {folder} (see ../shared/data/README.md)")
    return [Image.open(path).convert("RGB") for path in files]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def selfies():
    return held_out(data.SELFIE_PHOTOS, 4)


@pytest.fixture(scope="module")
def utkfaces():
    return held_out(data.UTKFACE, 10)


@pytest.fixture(scope="module")
def landmark_loss():
    return LandmarkLoss()


def eye_distance(landmarks):
    return float(np.linalg.norm(landmarks[1] - landmarks[0]))


def test_every_onnx_convolution_maps_onto_facexlib():
    nodes, _ = read_onnx(onnx_bytes())
    distinct = {tuple(node["inputs"][1:]) for node in nodes if node["op"] == "Conv"}
    aliases = {node["outputs"][0] for node in nodes if node["op"] == "Identity"}
    distinct = {inputs for inputs in distinct if not set(inputs) & aliases}
    convolutions = [m for m in build_network().modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(distinct) == len(convolutions) == 56


def test_converted_network_matches_onnx(selfies):
    network = build_network()
    network.load_state_dict(convert_onnx(onnx_bytes()))
    faces = np.stack([np.asarray(image.resize((192, 160)))[..., ::-1] for image in selfies[:2]]).astype(np.float32)
    noise = np.random.default_rng(0).uniform(0, 255, faces.shape).astype(np.float32)
    batch = np.concatenate([faces, noise]).transpose(0, 3, 1, 2) - np.array(BGR_MEAN, np.float32).reshape(1, 3, 1, 1)
    expected = onnxruntime.InferenceSession(onnx_bytes()).run(None, {"input": np.ascontiguousarray(batch)})
    with torch.no_grad():
        actual = network(torch.from_numpy(batch))
    for name, want, got in zip(("loc", "conf", "landmarks"), expected, actual):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got.numpy(), want, atol=1e-3, rtol=0, err_msg=name)


def test_finds_the_face_in_a_held_out_photo(selfies):
    import retinaface  # the ONNX package's own pre- and post-processing, as an independent reference

    for image in selfies[:2]:
        faces = detect_faces(image)
        assert len(faces) == 1
        face = faces[0]
        x0, y0, x1, y1 = face.box
        assert face.score > 0.9 and x1 - x0 > 0.2 * image.width
        assert ((face.landmarks[:, 0] > x0) & (face.landmarks[:, 0] < x1)).all()
        assert face.landmarks[0, 0] < face.landmarks[1, 0] and face.landmarks[3, 0] < face.landmarks[4, 0]
        assert face.landmarks[:2, 1].max() < face.landmarks[2, 1] < face.landmarks[3:, 1].min()  # eyes, nose, mouth
        reference = retinaface.detect_faces(np.asarray(image))
        points = np.array([[p.x, p.y] for p in reference[0].landmarks], np.float32)
        assert np.abs(points - face.landmarks).max() < 0.15 * eye_distance(face.landmarks)


def test_blank_image_has_no_face():
    assert detect_faces(Image.new("RGB", (320, 240), (180, 180, 180))) == []


def test_mtcnn_finds_the_face_when_retinaface_is_unavailable(selfies, monkeypatch):
    image = selfies[0]
    expected = detect_faces(image)[0].landmarks
    monkeypatch.setattr(detect, "retinaface", lambda: None)
    faces = detect_faces(image)
    assert len(faces) == 1
    assert np.abs(faces[0].landmarks - expected).max() < 0.25 * eye_distance(expected)


def test_many_faces_are_capped_largest_first(utkfaces):
    mosaic = Image.new("RGB", (5 * 160, 2 * 160), "white")
    for index, image in enumerate(utkfaces):
        side = 160 - 8 * index  # distinct sizes, so "largest first" is checkable
        mosaic.paste(image.resize((side, side)), ((index % 5) * 160, (index // 5) * 160))
    everything = detect_faces(mosaic, max_faces=20)
    assert len(everything) >= 9
    capped = detect_faces(mosaic, max_faces=8)
    assert len(capped) == 8
    areas = [face.area for face in capped]
    assert areas == sorted(areas, reverse=True)
    assert areas[-1] >= max(face.area for face in everything[8:])


def test_tiny_and_huge_images_give_landmarks_in_their_own_pixels(selfies):
    image = selfies[0]
    reference = detect_faces(image)[0].landmarks / image.width
    for side in (48, 2000):  # enlarged from tiny; scaled down and searched twice
        faces = detect_faces(image.resize((side, side), Image.Resampling.BILINEAR))
        assert len(faces) == 1
        assert np.abs(faces[0].landmarks / side - reference).max() < 0.03


@pytest.mark.parametrize("framing", ["ffhq", "utkface"])
def test_aligned_crop_puts_the_eyes_on_the_template(selfies, utkfaces, framing):
    for image in (selfies[0], utkfaces[0]):
        face = detect_faces(image)[0]
        crop, matrix = align_face(image, face, size=256, framing=framing)
        assert crop.size == (256, 256) and matrix.shape == (2, 3)
        found = detect_faces(crop)[0].landmarks
        mapped = face.landmarks @ matrix[:, :2].T + matrix[:, 2]
        assert np.abs(found - mapped).max() < 0.15 * eye_distance(mapped)  # the matrix says where the face went
        eyes = FRAMINGS[framing][:2] * 256
        assert np.abs(found[:2].mean(0) - eyes.mean(0)).max() < 0.03 * 256
        assert eye_distance(found) == pytest.approx(eye_distance(eyes), rel=0.1)


def test_align_then_paste_with_identity_leaves_the_image_unchanged(selfies):
    image = selfies[1]
    crop, matrix = align_face(image, detect_faces(image)[0], size=256)
    pasted = np.asarray(paste_faces(image, [crop], [matrix]), np.float32)
    difference = np.abs(pasted - np.asarray(image, np.float32))
    assert difference.mean() < 2.0 and np.percentile(difference, 99) < 20
    with pytest.raises(ValueError):
        align_face(image, detect_faces(image)[0], framing="passport")


def test_apply_to_faces_pastes_onto_the_background_only_where_faces_are(selfies):
    image = selfies[2]
    background = Image.new("RGB", image.size, (0, 0, 255))
    result, faces = apply_to_faces(image, lambda crop: Image.new("RGB", crop.size, (255, 0, 0)), background=background)
    assert len(faces) == 1
    pixels = np.asarray(result).astype(int)
    x0, y0, x1, y1 = (int(v) for v in faces[0].box)
    centre = pixels[(y0 + y1) // 2, (x0 + x1) // 2]
    assert centre[0] > 250 and centre[2] < 5  # face: the transformed crop
    assert (pixels[0, 0] == [0, 0, 255]).all()  # far corner: the background
    blank = Image.new("RGB", (200, 200), (128, 128, 128))
    result, faces = apply_to_faces(blank, lambda crop: crop, background=background.resize((200, 200)))
    assert faces == [] and np.asarray(result)[0, 0].tolist() == [0, 0, 255]


def shifted(images, dx, dy):
    """Images translated by (dx, dy) pixels, bilinear, differentiable in the shift."""
    batch, _, height, width = images.shape
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta = theta + torch.stack([torch.zeros(2), torch.zeros(2), torch.stack([dx * 2 / width, dy * 2 / height])], 1)
    grid = F.affine_grid(theta, images.shape, align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def test_landmark_loss_falls_as_the_cartoon_moves_to_the_photos_landmarks(utkfaces, landmark_loss):
    photo = torch.cat([to_tensor(image.resize((128, 128))) for image in utkfaces[:2]])
    losses = [float(landmark_loss(photo, shifted(photo, torch.tensor(s), torch.tensor(-s / 2)))) for s in (12.0, 8.0, 4.0, 0.0)]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.1 * losses[0]


def test_landmark_loss_gradient_moves_the_cartoon_back(utkfaces, landmark_loss):
    photo = torch.cat([to_tensor(image.resize((128, 128))) for image in utkfaces[2:4]])
    offset = torch.tensor([8.0, -6.0], requires_grad=True)
    optimiser = torch.optim.SGD([offset], lr=60.0)
    start = float(offset.detach().norm())
    for _ in range(8):
        optimiser.zero_grad()
        loss = landmark_loss(photo, shifted(photo, offset[0], offset[1]))
        loss.backward()
        assert offset.grad is not None and torch.isfinite(offset.grad).all()
        optimiser.step()
    assert float(offset.detach().norm()) < 0.5 * start


def test_landmark_loss_ignores_photos_without_a_face(utkfaces, landmark_loss):
    blank = torch.zeros(1, 3, 128, 128)
    cartoon = torch.rand(1, 3, 128, 128, requires_grad=True)
    loss = landmark_loss(blank, cartoon)
    loss.backward()
    assert float(loss.detach()) == 0.0 and cartoon.grad is not None
    face = to_tensor(utkfaces[4].resize((128, 128)))
    mixed = landmark_loss(torch.cat([blank, face]), torch.cat([cartoon.detach(), shifted(face, torch.tensor(6.0), torch.tensor(0.0))]))
    alone = landmark_loss(face, shifted(face, torch.tensor(6.0), torch.tensor(0.0)))
    assert float(mixed) == pytest.approx(float(alone) / 2, rel=1e-4)
    with pytest.raises(ValueError):
        landmark_loss(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))


def test_pose_measure_lets_eyes_and_mouth_be_redrawn_but_not_the_head_moved():
    face = torch.tensor([[40.0, 50.0], [80.0, 50.0], [60.0, 70.0], [48.0, 90.0], [72.0, 90.0]])
    anime = face.clone()
    anime[0, 0], anime[1, 0] = 34.0, 86.0  # wider-set eyes
    anime[3, 0], anime[4, 0] = 54.0, 66.0  # a smaller mouth
    assert pose_offsets(anime, face).abs().max() < 1e-6
    assert point_offsets(anime, face).abs().max() > 0.1
    turned = face.clone()
    turned[2, 0] += 8.0  # the nose, and with it the head, turned sideways
    rolled = (face - 60.0) @ torch.tensor([[0.98, 0.2], [-0.2, 0.98]]) + 60.0
    moved = face + torch.tensor([6.0, 0.0])
    for other in (turned, rolled, moved):
        assert pose_offsets(other, face).abs().max() > 0.1
    assert pose_offsets(face * 2, face * 2).abs().max() == 0 and pose_offsets(moved * 2, face * 2).allclose(pose_offsets(moved, face))


def test_landmark_loss_pose_measure_still_pulls_a_moved_cartoon_back(utkfaces):
    pose_loss = LandmarkLoss(measure="pose")
    photo = torch.cat([to_tensor(image.resize((128, 128))) for image in utkfaces[:2]])
    losses = [float(pose_loss(photo, shifted(photo, torch.tensor(s), torch.tensor(-s / 2)))) for s in (12.0, 4.0, 0.0)]
    assert losses[0] > losses[1] > losses[2] and losses[2] < 0.1 * losses[0]
    with pytest.raises(ValueError):
        LandmarkLoss(measure="eyes")


def test_landmark_loss_at_the_cartoons_own_anchors_adds_a_term_that_also_pulls_back(utkfaces, landmark_loss):
    both = LandmarkLoss(own_anchors=True)
    photo = torch.cat([to_tensor(image.resize((128, 128))) for image in utkfaces[:2]])
    losses = []
    for s in (12.0, 4.0, 0.0):
        cartoon = shifted(photo, torch.tensor(s), torch.tensor(-s / 2))
        losses.append(float(both(photo, cartoon)))
        assert losses[-1] >= float(landmark_loss(photo, cartoon))
    assert losses[0] > losses[1] > losses[2] and losses[2] < 0.1 * losses[0]
    offset = torch.tensor([8.0, -6.0], requires_grad=True)
    both(photo, shifted(photo, offset[0], offset[1])).backward()
    assert (offset.grad * offset.detach()).sum() > 0  # descending the loss moves the cartoon back
    assert float(both(torch.zeros(1, 3, 128, 128), photo[:1])) == 0.0  # no face in the photo: nothing to keep


def test_the_face_score_term_pays_for_a_cartoon_whose_face_the_detector_barely_finds(utkfaces, landmark_loss):
    scored = LandmarkLoss(confidence_weight=1.0)
    photo = torch.cat([to_tensor(image.resize((128, 128))) for image in utkfaces[:2]])
    grey = torch.zeros_like(photo)
    faded = torch.lerp(grey, photo, 0.08)  # a face at 8% of its contrast: the detector is no longer sure of it
    kept_extra = float(scored(photo, photo)) - float(landmark_loss(photo, photo))
    faded_extra = float(scored(photo, faded)) - float(landmark_loss(photo, faded))
    assert 0 <= kept_extra < 0.01 and faded_extra > 0.1
    contrast = torch.tensor(0.08, requires_grad=True)
    scored(photo, torch.lerp(grey, photo, contrast)).backward()
    assert contrast.grad < 0  # descending the loss brings the face back


def test_the_landmark_term_can_read_faces_at_the_size_detection_uses(utkfaces, landmark_loss):
    enlarged = LandmarkLoss(detect_side=256)
    photo = torch.cat([to_tensor(image.resize((128, 128))) for image in utkfaces[:2]])
    cartoon = shifted(photo, torch.tensor(6.0), torch.tensor(-3.0))
    up = [torch.nn.functional.interpolate(x, size=256, mode="bilinear", align_corners=False) for x in (photo, cartoon)]
    assert torch.allclose(enlarged(photo, cartoon), landmark_loss(*up))
    offset = torch.tensor([8.0, -6.0], requires_grad=True)
    enlarged(photo, shifted(photo, offset[0], offset[1])).backward()
    assert (offset.grad * offset.detach()).sum() > 0  # the gradient reaches the small cartoon and moves it back


def test_located_faces_give_the_same_loss_and_each_photos_landmarks_in_its_own_pixels(utkfaces, landmark_loss):
    enlarged = LandmarkLoss(detect_side=256)
    images = [image.resize((128, 128)) for image in utkfaces[:2]]
    photo = torch.cat([to_tensor(image) for image in images])
    cartoon = shifted(photo, torch.tensor(5.0), torch.tensor(2.0))
    faces = enlarged.locate(photo)
    assert torch.equal(enlarged(photo, cartoon, faces), enlarged(photo, cartoon))
    landmarks, has_face = faces.landmarks()
    assert has_face.all()
    for image, points in zip(images, landmarks):
        found = detect_faces(image)[0].landmarks
        assert np.abs(points.numpy() - found).max() < 0.1 * eye_distance(found)
    blank = landmark_loss.locate(torch.zeros(1, 3, 128, 128))
    assert not blank.landmarks()[1].any()


def test_photo_to_anime_crops_faces_in_the_framing_twingan_trained_on(selfies):
    """TwinGAN learnt on selfie2anime's raw selfies: its face crops must place faces as they sit
    there, not in FFHQ's looser framing (a smaller face with replicated rows above the head)."""
    from cartoon.twingan import FRAMING, anime_photo
    from cartoon.twingan.model import TwinGAN

    torch.manual_seed(0)
    model = TwinGAN(resolution=32, width=4, max_width=8).eval()
    image = selfies[0]
    result = anime_photo(image, mode="crop", model=model)
    own, _ = align_face(image, detect_faces(image)[0], size=256, framing=FRAMING)
    looser, _ = align_face(image, detect_faces(image)[0], size=256, framing="ffhq")
    assert FRAMING == "selfie2anime" and result.faces == 1
    assert np.array_equal(np.asarray(result.source), np.asarray(own))
    assert not np.array_equal(np.asarray(result.source), np.asarray(looser))
