"""Apply an image-to-image model to a photo in one of three ways, shared by every photo model.

- "faces": each face (up to `max_faces`) is aligned, transformed at the model's preferred size and
  pasted back with a feathered edge over the transformed whole picture;
- "whole": the whole picture in one pass;
- "crop": the aligned face crops only, side by side.
Without a face, "faces" and "crop" fall back to the whole picture and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image
from tqdm import tqdm

from cartoon.images import ImageError, list_images, open_image

MODES = {
    "faces": "Faces, pasted back",
    "whole": "Whole image",
    "crop": "Face crop only",
}
MAX_FACES = 8

Transform = Callable[[Image.Image], Image.Image]


@dataclass
class Stylized:
    image: Image.Image
    source: Image.Image  # what `image` is a transformation of: the photo, or its face crops
    notes: list[str] = field(default_factory=list)
    faces: int = 0


def stylize(
    image: Image.Image,
    transform: Transform,
    mode: str = "faces",
    face_size: int = 256,
    max_faces: int = MAX_FACES,
    whole_transform: Transform | None = None,
    framing: str = "ffhq",
) -> Stylized:
    """`transform` handles aligned face crops; `whole_transform` (default: `transform`) the picture.
    `framing` places the face in its crop (`cartoon.faces.align.FRAMINGS`): the framing of the
    photos the model trained on, so it sees faces where and as large as it learnt them."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    whole_transform = whole_transform or transform
    if mode == "whole":
        return Stylized(whole_transform(image), image)

    from cartoon.faces import align_face, detect_faces, paste_faces

    # Ask for one more face than we use, to know whether some were left out.
    faces = detect_faces(image, max_faces=max_faces + 1)
    notes = []
    if len(faces) > max_faces:
        faces = faces[:max_faces]
        notes.append(f"More than {max_faces} faces: the {max_faces} largest were processed.")
    if not faces:
        return Stylized(whole_transform(image), image, ["No face found: the whole image was processed instead."])

    aligned = [align_face(image, face, size=face_size, framing=framing) for face in faces]
    crops = [transform(crop) for crop, _ in aligned]
    if mode == "crop":
        return Stylized(side_by_side(crops), side_by_side([crop for crop, _ in aligned]), notes, len(faces))
    pasted = paste_faces(whole_transform(image), crops, [matrix for _, matrix in aligned])
    return Stylized(pasted, image, notes, len(faces))


def side_by_side(images: list[Image.Image]) -> Image.Image:
    strip = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)), "white")
    x = 0
    for image in images:
        strip.paste(image, (x, 0))
        x += image.width
    return strip


def stylize_files(inputs, output, apply: Callable[[Image.Image], Stylized], max_side: int, verb: str) -> int:
    """The command-line loop: every image below `inputs` → `output/<name>.png`, with a progress bar.

    Unreadable files are reported and skipped; the exit code is 1 only when nothing succeeded.
    """
    if max_side < 1:
        raise SystemExit("--max-side must be a positive number of pixels")
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise SystemExit(f"{output} is a file: -o takes a folder for the results")
    try:
        files = list_images(inputs)
    except ImageError as error:
        raise SystemExit(str(error))
    if not files:
        raise SystemExit("No images found in the given inputs.")
    output.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in tqdm(files, desc=verb, unit="image"):
        try:
            loaded = open_image(path, max_side=max_side)
            result = apply(loaded.image)
        except ImageError as error:
            tqdm.write(f"skipped {path}: {error}")
            failures += 1
            continue
        result.image.save(output / f"{path.stem}.png")
        for note in loaded.notes + result.notes:
            tqdm.write(f"{path.name}: {note}")
    print(f"{len(files) - failures} of {len(files)} images {verb}d into {output}")
    return 1 if failures == len(files) else 0
