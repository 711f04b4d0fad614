"""The white-box trainer's colour and luminance terms: what each pays for and what it leaves free."""

import torch
from test_faces_skin import LANDMARKS

from cartoon.faces.skin import skin_masks
from cartoon.whitebox.losses import colour_drift, interquartile_mean, luma_drift, skin_luma_drift


def test_colour_drift_punishes_a_palette_shift_more_than_drawn_lines():
    torch.manual_seed(0)
    photo = torch.rand(2, 3, 64, 64) * 1.6 - 0.8
    paler = (photo + 0.5).clamp(-1, 1)  # every colour toward white, as the cartoon set's palette pulls
    lined = photo.clone()
    lined[..., ::16, :] = -1  # one-pixel dark lines every 16 rows
    flattened = torch.nn.functional.avg_pool2d(photo, 8).repeat_interleave(8, 2).repeat_interleave(8, 3)
    assert colour_drift(photo, photo) == 0
    assert colour_drift(photo, flattened) < 1e-6  # flat fills inside a block keep its mean
    assert colour_drift(photo, paler) > 3 * colour_drift(photo, lined)


def test_luma_drift_holds_a_faces_brightness_but_not_its_shading():
    torch.manual_seed(0)
    photo = torch.rand(2, 3, 128, 128) * 0.4 - 0.6  # darker skin
    lighter = photo + 0.2
    shading = torch.where(torch.arange(128) // 16 % 2 == 0, 0.2, -0.2)  # light and dark bands a cheek wide, of one mean
    shaded = photo + shading
    assert luma_drift(photo, photo) == 0
    assert luma_drift(photo, lighter) > 3 * luma_drift(photo, shaded)


def faces_at(size):
    return torch.tensor(LANDMARKS * size / 256, dtype=torch.float32)[None].repeat(2, 1, 1), torch.tensor([True, True])


def darker_skin_photos():
    """Two 128² photos of darker skin with their faces' landmarks, `has_face` and skin masks."""
    torch.manual_seed(0)
    landmarks, has_face = faces_at(128)
    return torch.rand(2, 3, 128, 128) * 0.4 - 0.6, landmarks, has_face, skin_masks(landmarks, 128, 128)


def test_skin_luma_drift_pays_for_lighter_skin_and_not_for_the_rest_of_the_picture():
    photo, landmarks, has_face, skin = darker_skin_photos()
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


def test_skin_luma_drift_is_not_paid_for_by_dark_lines_drawn_on_lighter_skin():
    photo, landmarks, has_face, skin = darker_skin_photos()
    inked = photo + 0.1 * skin
    inked[..., ::5, :] = torch.where(skin[:, :, ::5, :] > 0, -1.0, inked[..., ::5, :])  # every fifth row of skin drawn black
    inked.requires_grad_()

    def skin_mean(images):
        return (images.mean(1, keepdim=True) * skin).sum() / skin.sum()

    assert skin_mean(inked) < skin_mean(photo)  # in the mean, the lines more than pay for the lighter skin
    skin_luma_drift(photo, inked, landmarks, has_face).backward()
    # the term still reads the skin as lighter: a descent step darkens it
    assert (inked.grad * skin).sum() > 0


def test_interquartile_mean_of_few_and_tied_values():
    torch.testing.assert_close(interquartile_mean(torch.tensor([0.3])), torch.tensor(0.3))
    torch.testing.assert_close(interquartile_mean(torch.tensor([0.2, 0.6])), torch.tensor(0.4))  # nothing between the quartiles
    torch.testing.assert_close(interquartile_mean(torch.full((7,), -0.5)), torch.tensor(-0.5))
    torch.testing.assert_close(interquartile_mean(torch.tensor([-1.0, 0.1, 0.1, 0.1, 0.1, 0.1, 1.0])), torch.tensor(0.1))


def test_skin_luma_drift_passes_its_gradient_to_the_middle_half_of_the_skin():
    torch.manual_seed(0)
    photo = torch.zeros(1, 3, 128, 128)
    landmarks, has_face = faces_at(128)
    cartoon = (torch.rand(1, 3, 128, 128) * 0.5 + 0.1).requires_grad_()
    skin_luma_drift(photo, cartoon, landmarks[:1], has_face[:1]).backward()
    touched = (cartoon.grad.abs().sum(1) > 0).sum().item()
    assert 0.45 < touched / skin_masks(landmarks, 128, 128)[0].sum().item() < 0.55
