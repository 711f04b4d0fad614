"""A differentiable landmark loss: the cartoon's face must keep the photo's five landmarks.

The frozen RetinaFace regresses landmarks relative to each anchor. We find where the photo's
face is (its confident anchors, without gradients) and read the cartoon's landmark regression at
those same anchors, with gradients: moving an eye in the cartoon moves the regressed eye, so the
loss pulls the cartoon's features back to where the photo has them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cartoon.faces.retinaface import RetinaFaceDetector


class PhotoFaces(NamedTuple):
    """Where the detector found the photos' faces: its `anchors` (B, K) most confident, their `weights`
    (B, K: the score, 0 below the threshold) and the landmarks they regress, `points` (B, K, 5, 2), in
    the pixels of the images the detector saw, which are `scale` times the pixels of the photos given."""
    anchors: torch.Tensor
    weights: torch.Tensor
    points: torch.Tensor
    scale: float

    def share(self) -> torch.Tensor:
        """(B, K) each anchor's part of its photo's face; all 0 for a photo without one."""
        return self.weights / self.weights.sum(1, keepdim=True).clamp(min=1e-6)

    def weighted_points(self) -> torch.Tensor:
        """(B, 5, 2) each photo's score-weighted landmarks, in the detector's pixels."""
        return (self.points * self.share()[..., None, None]).sum(1)

    def has_face(self) -> torch.Tensor:
        return self.weights.sum(1) > 0

    def landmarks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 5, 2) each photo's score-weighted landmarks in its own pixels, and (B,) whether it has a face."""
        return self.weighted_points().float() / self.scale, self.has_face()


class LandmarkLoss(nn.Module):
    """loss = LandmarkLoss()(photo, cartoon) → scalar tensor.

    photo, cartoon: (B, 3, H, W) RGB in [-1, 1], same size, H and W ≥ 64 (128² crops work).
    For each photo, the anchors whose face score exceeds `threshold` (at most `top_k`, weighted
    by score) give reference landmarks; the cartoon's landmarks are regressed at the same
    anchors. The distance is a smooth L1 over what `measure` compares, in units of the photo's face
    size, so it means the same at any crop size. Photos without a confident
    face contribute 0; the result is the sum over faces divided by B, so it stays comparable
    to per-image means in a weighted sum of losses. Gradients flow only into `cartoon`; the
    detector is frozen and always in eval mode.

    `measure` is what must be kept: "points" (the 5 points, eyes, nose, mouth corners, where they
    are, in eye distances)
    or "pose" (see `pose_offsets`: where the head is and how it is turned, leaving eye spacing and
    mouth width free, since an anime drawing redraws both).

    `confidence_weight` > 0 adds −log(face score) of the cartoon at those anchors, which keeps the
    cartoon recognisable as a face to the detector (0 by default: landmarks only).

    `own_anchors=True` adds the same distance read at the cartoon's own most confident anchors,
    against the photo's score-weighted landmarks. A detector run on the cartoon reports the
    landmarks of those anchors, not of the photo's: a generator pulled only at the photo's anchors
    can meet the loss there while the anchors the detector picks point elsewhere.

    `detect_side` shows both images to the detector enlarged to that side (bilinear), as
    `detect_faces` shows a photo at its longest side of 512. The detector reads a face at each size
    with different layers and anchors, so a small training crop's cartoon can pass at its own size
    and still be missed at the size where faces are looked for (None: the images' own size).
    """

    def __init__(self, threshold: float = 0.8, top_k: int = 8, confidence_weight: float = 0.0, measure: str = "points",
                 own_anchors: bool = False, detect_side: int | None = None):
        super().__init__()
        if measure not in MEASURES:
            raise ValueError(f"measure must be one of {sorted(MEASURES)}, not {measure!r}")
        self.detector = RetinaFaceDetector()
        self.threshold = threshold
        self.top_k = top_k
        self.confidence_weight = confidence_weight
        self.offsets = MEASURES[measure]
        self.own_anchors = own_anchors
        self.detect_side = detect_side

    def locate(self, photo: torch.Tensor) -> PhotoFaces:
        """The photos' faces, found once for the loss and for any other term that needs them."""
        if min(photo.shape[-2:]) < 64:
            raise ValueError(f"LandmarkLoss needs images of at least 64×64, got {tuple(photo.shape[-2:])}")
        with torch.no_grad():
            _, photo_scores, photo_points = self.detector(self._enlarged(photo))
            scores, anchors = photo_scores.topk(min(self.top_k, photo_scores.shape[1]), dim=1)
            batch = torch.arange(photo.shape[0], device=photo.device).unsqueeze(1)
            return PhotoFaces(anchors, scores * (scores > self.threshold), photo_points[batch, anchors], self._detection_scale(photo))

    def forward(self, photo: torch.Tensor, cartoon: torch.Tensor, faces: PhotoFaces | None = None) -> torch.Tensor:
        """`faces`: `locate(photo)`, when the caller has already found them."""
        if photo.shape != cartoon.shape:
            raise ValueError(f"photo {tuple(photo.shape)} and cartoon {tuple(cartoon.shape)} must have the same shape")
        faces = faces if faces is not None else self.locate(photo)
        anchors, weights, reference = faces.anchors, faces.weights, faces.points
        batch = torch.arange(photo.shape[0], device=photo.device).unsqueeze(1)
        _, cartoon_scores, cartoon_points = self.detector(self._enlarged(cartoon))
        offset = self.offsets(cartoon_points[batch, anchors], reference)
        distance = offset_distance(offset)
        if self.confidence_weight:
            confidence = -torch.log(cartoon_scores[batch, anchors].clamp(min=1e-6))
            distance = distance + self.confidence_weight * confidence
        per_image = (distance * weights).sum(1) / weights.sum(1).clamp(min=1e-6)
        if self.own_anchors:
            per_image = per_image + self._at_own_anchors(cartoon_scores, cartoon_points, faces)
        return per_image.sum() / photo.shape[0]

    def _detection_scale(self, images: torch.Tensor) -> float:
        """How many of the detector's pixels one pixel of `images` becomes (1 without `detect_side`)."""
        return self.detect_side / max(images.shape[-2:]) if self.detect_side else 1.0

    def _enlarged(self, images: torch.Tensor) -> torch.Tensor:
        """`images` scaled so their longest side is `detect_side` (as they are when it is None)."""
        if not self.detect_side:
            return images
        size = [round(side * self._detection_scale(images)) for side in images.shape[-2:]]
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False)

    def _at_own_anchors(self, cartoon_scores, cartoon_points, faces: PhotoFaces):
        """(B,) distance of the landmarks at the cartoon's top anchors from the photo's weighted landmarks."""
        with torch.no_grad():
            scores, anchors = cartoon_scores.topk(self.top_k, dim=1)
            weights = scores * (scores > self.threshold)
            batch = torch.arange(cartoon_scores.shape[0], device=cartoon_scores.device).unsqueeze(1)
            target = faces.weighted_points().unsqueeze(1)  # (B, 1, 5, 2)
        offset = self.offsets(cartoon_points[batch, anchors], target.expand(-1, self.top_k, -1, -1))
        distance = offset_distance(offset)
        has_face = faces.has_face().float()  # a photo without a face has nothing to keep
        return has_face * (distance * weights).sum(1) / weights.sum(1).clamp(min=1e-6)


def offset_distance(offset: torch.Tensor) -> torch.Tensor:
    """(..., P, 2) offsets → (...,) mean over the P points of their smooth L1 length.

    Quadratic within 5% of the face's scale, so the optimum is not a kink."""
    return F.smooth_l1_loss(offset, torch.zeros_like(offset), reduction="none", beta=0.05).sum(-1).mean(-1)


def point_offsets(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(..., 5, 2) landmarks → their offsets from the reference's, in the reference's eye distances."""
    eye_distance = (reference[..., 1, :] - reference[..., 0, :]).norm(dim=-1).clamp(min=4.0)
    return (points - reference) / eye_distance[..., None, None]


def pose_offsets(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(..., 5, 2) landmarks → (..., 5, 2) offsets of the head's pose from the reference's.

    Three rows are the eye centre, nose tip and mouth centre, in the reference's eye-to-mouth
    distances: where the face sits, how tall it is, how far the nose turns it. Two are the unit
    directions of the eye line and of the mouth line: roll, and a mouth tilted by a lopsided smile.
    The eye spacing and the mouth width are left out, so larger, wider-set anime eyes and a small
    anime mouth cost nothing.
    """
    def direction(line):
        return line / line.norm(dim=-1, keepdim=True).clamp(min=1e-6)

    def pose(p):  # RetinaFace's order: left eye, right eye, nose tip, left and right mouth corner
        eyes, nose, mouth = p[..., 0:2, :], p[..., 2, :], p[..., 3:5, :]
        return (eyes.mean(-2), nose, mouth.mean(-2),
                direction(eyes[..., 1, :] - eyes[..., 0, :]), direction(mouth[..., 1, :] - mouth[..., 0, :]))

    moved, kept = pose(points), pose(reference)
    height = (kept[2] - kept[0]).norm(dim=-1, keepdim=True).clamp(min=4.0)
    places = [(a - b) / height for a, b in zip(moved[:3], kept[:3])]
    turns = [a - b for a, b in zip(moved[3:], kept[3:])]
    return torch.stack(places + turns, dim=-2)


MEASURES = {"points": point_offsets, "pose": pose_offsets}
