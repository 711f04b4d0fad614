"""Give a cartoon back the photo's colours at a coarse scale, keeping its own luminance and detail.

The cel generator's surface critic learned the Cartoon Set's palette, in which 97% of coloured
avatar pixels have a hue between orange and yellow (30-90° in CIELAB) and almost none are red,
pink or blue. Its cartoons pull every hue toward that band: held-out reds and pinks (lips) turn
15° toward orange and lose chroma, yellows (blonde hair) turn 6° toward orange. A mean colour
shift per image cannot undo a pull that depends on the hue (docs/whitebox-experiments.md).

The correction here adds to the cartoon's chroma (BT.601 Cb, Cr) the photo-minus-cartoon chroma
difference, smoothed: the fine structure of the cartoon's colour (flat fills, dark lines) stays,
its drift at the scale of lips and hair goes. The luminance (Y = 0.299 R + 0.587 G + 0.114 B, the
one `cartoon.whitebox.evaluate` measures flatness and edges on) is the cartoon's own, unless a
`luma_radius` asks for the photo's at that coarser scale: the cartoon's lines and fills, and its
shading finer than the radius, stay; its drift in skin brightness at that scale goes (the cel
generator lightened darker skin most, +5 L*).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cartoon.whitebox.guided_filter import box_mean

LUMA = (0.299, 0.587, 0.114)
CB_SCALE, CR_SCALE = 1.772, 1.402  # BT.601: Cb = (B - Y) / 1.772, Cr = (R - Y) / 1.402
# The correction is worked out at this short side whatever the image's size, so its scale is a
# fraction of the face (a radius of 4 at 128 px: 1/32 of the image), and at 512² it costs about a
# tenth of the 16-channel generator's time.
WORKING_SIDE = 128
# A plain box mean, not an edge-aware filter: one that follows the cartoon's edges hands each
# drawn line the photo's colour under it (a dark pink line across a pink lip), where a smooth
# correction leaves the line as dark as the cartoon drew it.
RADIUS = 4


def luma(images: torch.Tensor) -> torch.Tensor:
    weights = images.new_tensor(LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def chroma(images: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W): Cb and Cr of RGB images whose luma is `y`."""
    return torch.cat([(images[:, 2:3] - y) / CB_SCALE, (images[:, 0:1] - y) / CR_SCALE], 1)


def rgb(y: torch.Tensor, cb_cr: torch.Tensor) -> torch.Tensor:
    red, blue = y + CR_SCALE * cb_cr[:, 1:2], y + CB_SCALE * cb_cr[:, 0:1]
    green = (y - LUMA[0] * red - LUMA[2] * blue) / LUMA[1]
    return torch.cat([red, green, blue], 1)


def keep_photo_colour(photo: torch.Tensor, cartoon: torch.Tensor, luma_radius: int | None = None) -> torch.Tensor:
    """The cartoon (N, 3, H, W, in [-1, 1]) with its chroma drift from the photo removed at a coarse
    scale; its luminance unchanged except where the corrected colour leaves the RGB cube, or, given
    `luma_radius` (a box radius at WORKING_SIDE), its luminance drift removed at that scale.

    Every step but the last is linear, so the whole correction is worked out at the small size
    and only its RGB form is upsampled and added: at 512² this costs a few full-size passes.
    """
    if luma_radius is not None and luma_radius < 1:
        raise ValueError(f"luma_radius must be at least 1, not {luma_radius}")
    photo, cartoon = photo.float(), cartoon.float()
    height, width = cartoon.shape[-2:]
    scale = min(1.0, WORKING_SIDE / min(height, width))
    small = (max(1, round(height * scale)), max(1, round(width * scale)))
    photo_small, cartoon_small = (F.interpolate(x, size=small, mode="area") for x in (photo, cartoon))
    photo_luma, cartoon_luma = luma(photo_small), luma(cartoon_small)
    drift = chroma(photo_small, photo_luma) - chroma(cartoon_small, cartoon_luma)
    luma_change = torch.zeros_like(photo_luma) if luma_radius is None else box_mean(photo_luma - cartoon_luma, luma_radius)
    correction = rgb(luma_change, box_mean(drift, RADIUS))  # a grey change of luma plus a chroma change of none
    return (cartoon + F.interpolate(correction, size=(height, width), mode="bilinear", align_corners=False)).clamp(-1, 1)
