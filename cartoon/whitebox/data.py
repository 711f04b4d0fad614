"""Training images for the white-box cartoonizer: photo folders and cartoon folders.

Any folders may be given. When a folder is one of the project's own datasets (`cartoon.data`),
only its train split is used, so the held-out faces evaluations rely on never reach training.
"""

from __future__ import annotations

from pathlib import Path

from torchvision import transforms

from cartoon.data import HOLDOUT, SELFIE_ANIME, SELFIE_PHOTOS, UTKFACE, ImageFolder, images_in, split

DEFAULT_PHOTOS = (SELFIE_PHOTOS, UTKFACE)  # selfies are all women: UTKFace adds men, children, older people
DEFAULT_CARTOONS = (SELFIE_ANIME,)


def training_files(folders) -> list[Path]:
    project_folders = {Path(f).resolve(): f for f in HOLDOUT}
    files: list[Path] = []
    for folder in folders:
        known = project_folders.get(Path(folder).resolve())
        files.extend(split(known)[0] if known is not None else images_in(Path(folder)))
    if not files:
        raise FileNotFoundError(f"no images in {', '.join(map(str, folders))}")
    return files


def crops(size: int) -> transforms.Compose:
    """Random square crops of a quarter to all of the image, so whole faces and close-ups both occur."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(size, scale=(0.25, 1.0), ratio=(0.8, 1.25), antialias=True),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )


def image_dataset(folders, size: int) -> ImageFolder:
    return ImageFolder(files=training_files(folders), transform=crops(size))


def add_data_args(parser, size: int = 128):
    parser.add_argument("--photos", nargs="+", default=[str(f) for f in DEFAULT_PHOTOS], help="photo folders")
    parser.add_argument("--cartoons", nargs="+", default=[str(f) for f in DEFAULT_CARTOONS], help="cartoon folders")
    parser.add_argument("--size", type=int, default=size, help="training crop side")
    parser.add_argument("--channels", type=int, default=12, help="generator width at full resolution")
    parser.add_argument("--blocks", type=int, default=4, help="generator residual blocks")
    return parser
