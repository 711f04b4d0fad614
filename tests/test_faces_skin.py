"""The skin region, shared by the white-box evaluation and the training term that holds skin luminance."""

import numpy as np
import torch

from cartoon.faces.skin import skin_masks
from cartoon.whitebox import likeness
from cartoon.whitebox.losses import skin_luma_drift

LANDMARKS = np.array([[96.0, 100], [160, 104], [128, 140], [102, 170], [154, 172]])  # a slightly tilted face, at 256²


def test_the_training_mask_covers_the_pixels_the_evaluation_reads():
    region = likeness.skin_region(LANDMARKS, (likeness.SIZE, likeness.SIZE))
    mask = skin_masks(torch.tensor(LANDMARKS)[None], likeness.SIZE, likeness.SIZE)[0, 0].bool().numpy()
    overlap = (region & mask).sum() / (region | mask).sum()
    # they differ in how edge pixels are rasterised, and by half a pixel: cv2 takes whole coordinates as pixel centres
    assert region.sum() > 500 and overlap > 0.9


def rotated(points, degrees, centre=128.0):
    angle = np.radians(degrees)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (points - centre) @ turn.T + centre


def test_the_mask_turns_with_the_head_and_is_empty_for_landmarks_that_enclose_nothing():
    upright = skin_masks(torch.tensor(LANDMARKS)[None], 256, 256)[0, 0].bool().numpy()
    turned = skin_masks(torch.tensor(rotated(LANDMARKS, 30))[None], 256, 256)[0, 0].bool().numpy()
    ys, xs = np.nonzero(turned)
    back = np.round(rotated(np.stack([xs + 0.5, ys + 0.5], 1), -30) - 0.5).astype(int)  # turned pixels turned back
    assert upright[back[:, 1], back[:, 0]].mean() > 0.9
    assert (upright & turned).sum() < 0.8 * upright.sum()  # not the same box: the region turned with the face
    assert skin_masks(torch.full((1, 5, 2), 60.0), 128, 128).sum() == 0


def faces_at(size):
    return torch.tensor(LANDMARKS * size / 256, dtype=torch.float32)[None].repeat(2, 1, 1), torch.tensor([True, True])


def test_skin_luma_drift_pays_for_lighter_skin_and_not_for_the_rest_of_the_picture():
    torch.manual_seed(0)
    photo = torch.rand(2, 3, 128, 128) * 0.4 - 0.6
    landmarks, has_face = faces_at(128)
    skin = skin_masks(landmarks, 128, 128)
    lighter_skin = photo + 0.2 * skin
    lighter_elsewhere = photo + 0.2 * (1 - skin)
    assert skin_luma_drift(photo, photo, landmarks, has_face) == 0
    assert skin_luma_drift(photo, lighter_elsewhere, landmarks, has_face) == 0
    torch.testing.assert_close(skin_luma_drift(photo, lighter_skin, landmarks, has_face), torch.tensor(0.2))


def test_skin_luma_drift_leaves_photos_without_a_face_out_and_its_gradient_reaches_the_skin():
    photo = torch.zeros(2, 3, 128, 128)
    landmarks, _ = faces_at(128)
    cartoon = (photo + 0.1).requires_grad_()
    loss = skin_luma_drift(photo, cartoon, landmarks, torch.tensor([True, False]))
    loss.backward()
    torch.testing.assert_close(loss.detach(), torch.tensor(0.05))  # one face of two
    touched = cartoon.grad.abs().sum(1)
    assert touched[1].sum() == 0 and (touched[0] > 0).sum() == skin_masks(landmarks, 128, 128)[0].sum()
