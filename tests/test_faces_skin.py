"""The skin region, shared by the white-box evaluation and the training term that holds skin luminance
(whose tests are in test_whitebox_losses.py)."""

import numpy as np
import torch

from cartoon.faces.skin import skin_masks
from cartoon.whitebox import likeness

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
