"""Look-alike search: gallery images embedded by TwinGAN's shared encoder, searched with hnswlib.

A gallery is a folder of images. Its first-level sub-folders are its groups: images under
`anime/` and `human/` are searched separately, so an upload gets its nearest anime faces and
its nearest human faces; images anywhere else form the group "other".

Embeddings are cached on disk, one file per (gallery folder, model weights), with one entry per
image keyed by its path, modification time and size: adding, changing or deleting files costs
only the embedding of what changed. The default gallery is made at first use by the project's
own models (ACGAN avatars and their TwinGAN translations), so it holds nothing it may not ship.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import hnswlib
import numpy as np
import torch
from PIL import Image

from cartoon.images import IMAGE_SUFFIXES, ImageError, list_images, open_image, to_image
from cartoon.twingan.model import HUMAN, TwinGAN
from cartoon.vgg import cache_dir

GROUPS = ("anime", "human")
OTHER = "other"
EMBED_BATCH = 32
DEFAULT_GALLERY_SIZE = 64
# Bounds on an uploaded gallery, so a zip bomb or a huge archive is refused, not unpacked.
MAX_UPLOAD_IMAGES = 5000
MAX_UPLOAD_BYTES = 512 * 2**20
_lock = threading.Lock()
_open: dict[tuple[str, str], "Gallery"] = {}


@dataclass
class Match:
    path: Path
    group: str
    distance: float  # cosine distance in the shared embedding: 0 identical, 2 opposite


def model_fingerprint(model: TwinGAN) -> str:
    """Hash of the weights: cached embeddings belong to the exact model that computed them."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}"


def group_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).parts
    return parts[0].lower() if len(parts) > 1 and parts[0].lower() in GROUPS else OTHER


@torch.no_grad()
def embed_images(model: TwinGAN, images: list[Image.Image]) -> np.ndarray:
    from cartoon.twingan import square_tensor

    batch = torch.cat([square_tensor(image, model.resolution) for image in images]).to(next(model.parameters()).device)
    return model.embed(batch).cpu().numpy().astype(np.float32)


def query_image(image: Image.Image) -> Image.Image:
    """The largest face, aligned as the faces the model learnt from; the whole image without one."""
    from cartoon.faces import align_face, detect_faces

    faces = detect_faces(image, max_faces=1)
    return align_face(image, faces[0], size=256)[0] if faces else image


class Gallery:
    """Embeddings of every image under `folder`, one hnswlib index per group."""

    def __init__(self, folder: Path, model: TwinGAN, cache_file: Path):
        self.folder = Path(folder)
        self.cache_file = cache_file
        self.keys: list[str] = []
        self.refresh(model)

    def current_files(self) -> dict[str, Path]:
        try:
            files = list_images([self.folder])
        except ImageError as error:
            raise ImageError(f"The gallery folder {self.folder} does not exist.") from error
        return {file_key(path): path for path in files}

    def is_stale(self) -> bool:
        return sorted(self.current_files()) != self.keys

    def refresh(self, model: TwinGAN):
        """Embed new or changed files, forget deleted ones, rebuild the indices."""
        files = self.current_files()
        if not files:
            raise ImageError(f"The gallery folder {self.folder} holds no images.")
        cached = self._read_cache()
        missing = [key for key in files if key not in cached]
        for start in range(0, len(missing), EMBED_BATCH):
            batch, images = [], []
            for key in missing[start : start + EMBED_BATCH]:
                try:
                    images.append(open_image(files[key], max_side=512).image)
                    batch.append(key)
                except ImageError:
                    pass  # unreadable files are simply not part of the gallery
            if images:
                cached.update(zip(batch, embed_images(model, images)))
        keys = sorted(files)
        usable = [key for key in keys if key in cached]
        if not usable:
            raise ImageError(f"None of the {len(files)} files in the gallery folder {self.folder} could be read as an image.")
        self.keys = keys
        if missing or len(cached) != len(usable):
            self._write_cache({key: cached[key] for key in usable})
        self.paths = [files[key] for key in usable]
        self.groups = [group_of(path, self.folder) for path in self.paths]
        self.embeddings = np.stack([cached[key] for key in usable])
        self.indices = {}
        for group in sorted(set(self.groups)):
            ids = np.array([i for i, g in enumerate(self.groups) if g == group])
            index = hnswlib.Index(space="cosine", dim=self.embeddings.shape[1])
            index.init_index(max_elements=len(ids), ef_construction=200, M=16, random_seed=0)
            index.add_items(self.embeddings[ids], ids, num_threads=1)
            self.indices[group] = index

    def _read_cache(self) -> dict[str, np.ndarray]:
        try:
            with np.load(self.cache_file, allow_pickle=False) as stored:
                return dict(zip(stored["keys"].tolist(), stored["embeddings"]))
        except (OSError, KeyError, ValueError):
            return {}  # no cache yet, or an unreadable one: embed afresh

    def _write_cache(self, entries: dict[str, np.ndarray]):
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.cache_file.with_name(self.cache_file.stem + f".{os.getpid()}.tmp.npz")
        embeddings = np.stack(list(entries.values())) if entries else np.zeros((0, 1), np.float32)
        np.savez(temporary, keys=np.array(list(entries), dtype=str), embeddings=embeddings)
        temporary.replace(self.cache_file)

    def nearest(self, embedding: np.ndarray, k: int) -> dict[str, list[Match]]:
        """The `k` nearest images of each group to one embedding, nearest first."""
        results = {}
        for group, index in self.indices.items():
            count = min(k, index.get_current_count())
            index.set_ef(max(64, count))
            labels, distances = index.knn_query(embedding[None], k=count, num_threads=1)
            results[group] = [Match(self.paths[i], group, float(d)) for i, d in zip(labels[0], distances[0])]
        return results

    def search(self, model: TwinGAN, image: Image.Image, k: int = 8) -> dict[str, list[Match]]:
        if not 1 <= k <= 100:
            raise ValueError("k, the number of look-alikes, must be between 1 and 100.")
        return self.nearest(embed_images(model, [image])[0], k)


def open_gallery(folder, model: TwinGAN) -> Gallery:
    """A gallery, reused across calls in this process and refreshed when its files changed."""
    folder = default_gallery(model) if folder is None else Path(folder)
    if not folder.is_dir():
        raise ImageError(f"The gallery folder {folder} does not exist.")
    fingerprint = model_fingerprint(model)
    key = (str(folder.resolve()), fingerprint)
    with _lock:
        gallery = _open.get(key)
        if gallery is None:
            name = hashlib.sha1(key[0].encode()).hexdigest()[:16]
            gallery = _open[key] = Gallery(folder, model, cache_dir() / "twingan-gallery" / f"{name}-{fingerprint}.npz")
        elif gallery.is_stale():
            gallery.refresh(model)
        return gallery


@torch.no_grad()
def default_gallery(model: TwinGAN, size: int = DEFAULT_GALLERY_SIZE) -> Path:
    """The shipped default: ACGAN avatars (anime/) and their TwinGAN translations (human/), made once."""
    folder = cache_dir() / "twingan-default-gallery" / model_fingerprint(model)
    done = folder / ".complete"
    if done.is_file():
        return folder
    from cartoon.hub import load_model

    try:
        avatars = load_model("acgan")
    except FileNotFoundError as error:
        raise ImageError("No default look-alike gallery yet (the avatar model has no weights): choose a gallery folder.") from error
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(size, avatars.noise_dim, generator=generator)
    hair = torch.randint(0, avatars.hair_classes, (size,), generator=generator)
    eyes = torch.randint(0, avatars.eye_classes, (size,), generator=generator)
    device = next(avatars.parameters()).device
    faces = torch.nn.functional.interpolate(avatars(noise.to(device), hair.to(device), eyes.to(device)), size=model.resolution, mode="bicubic", align_corners=False).clamp(-1, 1)
    humans = model(faces, HUMAN)
    for group, images in (("anime", faces), ("human", humans)):
        (folder / group).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            to_image(image).save(folder / group / f"{group}_{i:03d}.png")
    done.touch()
    return folder


def gallery_from_upload(files, folder=()) -> Path:
    """A gallery folder from uploaded images and/or zip archives (anime/ and human/ paths kept as groups).

    `folder` holds the files of an uploaded folder: its images join the gallery and anything else
    in it (.DS_Store, notes) is passed over, as inside a zip. The gallery folder is named by the
    uploads' content, so the same upload reuses its cached embeddings.
    """
    files = [Path(f) for f in files or []] + [Path(f) for f in folder or [] if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ImageError("Upload images or a zip of images for the gallery.")
    entries: list[tuple[str, bytes]] = []  # (relative name, content)
    total = 0
    for path in files:
        if path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as archive:
                    for info in archive.infolist():
                        if info.is_dir() or not info.filename.lower().endswith(IMAGE_SUFFIXES):
                            continue
                        total += info.file_size
                        if len(entries) >= MAX_UPLOAD_IMAGES or total > MAX_UPLOAD_BYTES:
                            raise ImageError(f"The gallery is too large: at most {MAX_UPLOAD_IMAGES} images and {MAX_UPLOAD_BYTES // 2**20} MB.")
                        entries.append((_safe_name(info.filename), archive.read(info)))
            # a damaged archive, an encrypted member, or a compression zipfile cannot undo
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as error:
                raise ImageError(f"{path.name} is not a readable zip archive ({error}).") from error
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            total += path.stat().st_size
            if len(entries) >= MAX_UPLOAD_IMAGES or total > MAX_UPLOAD_BYTES:
                raise ImageError(f"The gallery is too large: at most {MAX_UPLOAD_IMAGES} images and {MAX_UPLOAD_BYTES // 2**20} MB.")
            entries.append((path.name, path.read_bytes()))
        else:
            raise ImageError(f"{path.name}: the gallery takes images ({', '.join(IMAGE_SUFFIXES)}) or zip archives.")
    if not entries:
        raise ImageError("The uploaded gallery holds no images.")
    digest = hashlib.sha1()
    for name, content in sorted(entries):
        digest.update(name.encode() + b"\0" + hashlib.sha1(content).digest())
    folder = cache_dir() / "twingan-uploads" / digest.hexdigest()[:16]
    if not folder.is_dir():
        temporary = folder.with_name(folder.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
        for index, (name, content) in enumerate(entries):
            target = temporary / name
            if target.exists():  # the same name twice (flattened folders): keep both
                target = target.with_name(f"{target.stem}_{index}{target.suffix}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        try:
            temporary.rename(folder)
        except OSError:  # another request unpacked the same upload first
            shutil.rmtree(temporary, ignore_errors=True)
    return folder


def _safe_name(member: str) -> str:
    """`anime/x.png` or `human/x.png` keep their group; every other path is flattened to its file name."""
    parts = [p for p in member.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    groups = [p.lower() for p in parts[:-1] if p.lower() in GROUPS]
    name = parts[-1]
    return f"{groups[-1]}/{name}" if groups else name


def thumbnails(matches: dict[str, list[Match]], size: int = 160) -> list[tuple[Image.Image, str]]:
    """(thumbnail, "group #rank · distance") for display, group by group, nearest first."""
    shown = []
    for group, found in matches.items():
        for rank, match in enumerate(found, 1):
            try:
                image = open_image(match.path, max_side=size).image
            except ImageError:
                continue  # deleted or damaged since it was indexed
            shown.append((image, f"{group} #{rank} · distance {match.distance:.3f}"))
    return shown
