"""Anime avatars by hair and eye colour, and morphs between them.

    from cartoon.acgan import Recipe, avatars, morph
    from cartoon.media import save_gif
    faces, recipes = avatars(Recipe.parse("acgan:v2;hair=blue;eyes=red;seed=7;n=16;trunc=0.8"))
    frames = morph(recipes[0], recipes[1], frames=60)
    save_gif(frames, "morph.gif")

A recipe names a set of faces exactly. Face k of a recipe with seed s is drawn from its own
random stream seeded with s + k (noise first, then any "random" colour), so
`recipe.face(k)` — seed s + k, n = 1, colours resolved — reproduces that one face alone.

A recipe names its generator's version (`acgan:v1`, `acgan:v2`, `acgan:v3`): each version's
weights stay registered (`MODEL_VERSIONS`), so a recipe saved with an older generator keeps its
pixels. Versions 1 and 2 are SRResNet ACGANs whose `trunc` scales the noise; version 3 is the
colour-conditioned style-based generator (`cartoon.stylegan.model`, trained by
`cartoon.stylegan.train --condition colours`), whose `trunc` pulls w toward the mean w of the
face's colour pair and which draws with its stored per-layer noise. A morph between two v3
faces moves z, the colour embedding and the truncation together.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from cartoon.acgan.model import EYE_COLOURS, HAIR_COLOURS, Generator
from cartoon.latent import INTERPOLATIONS, MAX_FRAMES, check_frames, lerp, slerp
from cartoon.media import grid, save_gif, save_video, strip, upscale, video_encoder
from cartoon.recipes import finite_number, split_recipe, whole_number
from cartoon.runtime import inference_autocast
from cartoon.stylegan.model import Generator as StyleGenerator

RECIPE_FAMILY = "acgan"
MODEL_VERSIONS = {1: "acgan-v1", 2: "acgan", 3: "acgan-v3"}  # recipe version → registered model (cartoon.hub)
# the version drawn when none is named (version 3 shipped: docs/acgan-shipping.md)
LATEST = 3
RANDOM = "random"
MAX_FACES = 64
MAX_SEED = 2**32 - 1
TRUNC_RANGE = (0.0, 2.0)
RENDER_BATCH = 64

# The grid, upscaling, interpolation and GIF/MP4 names live in cartoon.media and cartoon.latent,
# shared with the style-based generator; they stay importable from here so older callers keep working.
__all__ = [
    "EYE_COLOURS",
    "HAIR_COLOURS",
    "INTERPOLATIONS",
    "MAX_FRAMES",
    "Recipe",
    "avatars",
    "grid",
    "lerp",
    "load_generator",
    "morph",
    "save_gif",
    "save_video",
    "slerp",
    "strip",
    "upscale",
    "video_encoder",
    "walk",
]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a set of avatars; `str(recipe)` and `Recipe.parse` round-trip."""

    hair: str = RANDOM
    eyes: str = RANDOM
    seed: int = 0
    n: int = 1
    trunc: float = 1.0
    version: int = LATEST

    def __post_init__(self):
        if self.hair != RANDOM and self.hair not in HAIR_COLOURS:
            raise ValueError(f"unknown hair colour {self.hair!r}; choose one of: {', '.join(HAIR_COLOURS)} or random")
        if self.eyes != RANDOM and self.eyes not in EYE_COLOURS:
            raise ValueError(f"unknown eye colour {self.eyes!r}; choose one of: {', '.join(EYE_COLOURS)} or random")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, not {self.seed!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 1 <= self.n <= MAX_FACES:
            raise ValueError(f"n (number of faces) must be a whole number from 1 to {MAX_FACES}, not {self.n!r}")
        if not isinstance(self.trunc, (int, float)) or not TRUNC_RANGE[0] <= self.trunc <= TRUNC_RANGE[1]:
            raise ValueError(f"trunc (noise scale) must be a number from {TRUNC_RANGE[0]} to {TRUNC_RANGE[1]}, not {self.trunc!r}")
        if self.version not in MODEL_VERSIONS:
            raise ValueError(f"unknown generator version {self.version!r}; known: {', '.join(map(str, MODEL_VERSIONS))}")

    @property
    def prefix(self) -> str:
        return f"{RECIPE_FAMILY}:v{self.version}"

    def __str__(self) -> str:
        return f"{self.prefix};hair={self.hair};eyes={self.eyes};seed={self.seed};n={self.n};trunc={self.trunc:g}"

    @classmethod
    def parse(cls, text: str) -> Recipe:
        """Read `acgan:vN;key=value;…` (keys hair, eyes, seed, n, trunc; omitted ones take defaults)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"empty recipe; expected something like {cls(hair='blue', eyes='red', seed=7, n=16, trunc=0.8)}")
        version, fields = split_recipe(text, {f"{RECIPE_FAMILY}:v{version}": version for version in MODEL_VERSIONS})
        values: dict = {"version": version}
        for key, value in fields.items():
            if key in ("hair", "eyes"):
                values[key] = value.lower()
            elif key in ("seed", "n"):
                values[key] = whole_number(key, value)
            elif key == "trunc":
                values[key] = finite_number(key, value)
            else:
                raise ValueError(f"unknown recipe field {key[:40]!r}; known: hair, eyes, seed, n, trunc")
        return cls(**values)

    def face(self, k: int) -> Recipe:
        """The one-face recipe of face `k`, with its colours resolved."""
        if not 0 <= k < self.n:
            raise ValueError(f"face {k} does not exist in a recipe of {self.n} faces")
        _, hair, eyes = face_inputs(self, k, 1)
        return Recipe(HAIR_COLOURS[hair], EYE_COLOURS[eyes], self.seed + k, 1, self.trunc, self.version)


AvatarGenerator = Generator | StyleGenerator


def styled(generator: AvatarGenerator) -> bool:
    """True for version 3's kind: a style-based generator, truncated in w, not by scaling its noise."""
    return isinstance(generator, StyleGenerator)


def noise_size(generator: AvatarGenerator) -> int:
    return generator.latent_dim if styled(generator) else generator.noise_dim


def face_inputs(recipe: Recipe, k: int, noise_dim: int, scaled: bool = True) -> tuple[torch.Tensor, int, int]:
    """Noise (scaled by trunc unless `scaled` is False), hair index and eye index of face `k` of a recipe.

    The colour draws come first and are made even for fixed colours, so a face keeps its noise
    whether its colours are chosen or random, and whatever the generator's noise size.
    """
    stream = torch.Generator().manual_seed(recipe.seed + k)
    random_hair = int(torch.randint(len(HAIR_COLOURS), (1,), generator=stream))
    random_eyes = int(torch.randint(len(EYE_COLOURS), (1,), generator=stream))
    noise = torch.randn(noise_dim, generator=stream)
    if scaled:
        noise = noise * recipe.trunc
    hair = random_hair if recipe.hair == RANDOM else HAIR_COLOURS.index(recipe.hair)
    eyes = random_eyes if recipe.eyes == RANDOM else EYE_COLOURS.index(recipe.eyes)
    return noise, hair, eyes


@functools.lru_cache(maxsize=len(MODEL_VERSIONS))
def load_generator(version: int = LATEST) -> AvatarGenerator:
    """The generator of a recipe version (Hub, Hub cache or weights/), loaded once per process."""
    from cartoon.hub import load_model

    return load_model(MODEL_VERSIONS[version])


def recipe_inputs(recipe: Recipe, noise_dim: int, scaled: bool = True):
    """Noise (n, noise_dim), one-hot hair / eye weights and truncation (n,) for every face of a recipe;
    the noise is scaled by the truncation when `scaled` (versions 1 and 2)."""
    faces = [face_inputs(recipe, k, noise_dim, scaled) for k in range(recipe.n)]
    noise = torch.stack([f[0] for f in faces])
    hair = torch.nn.functional.one_hot(torch.tensor([f[1] for f in faces]), len(HAIR_COLOURS)).float()
    eyes = torch.nn.functional.one_hot(torch.tensor([f[2] for f in faces]), len(EYE_COLOURS)).float()
    return noise, hair, eyes, torch.full((recipe.n,), float(recipe.trunc))


def to_images(batch: torch.Tensor) -> list[Image.Image]:
    pixels = ((batch.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(p) for p in pixels]


@torch.no_grad()
def render(generator: AvatarGenerator, noise, hair, eyes, trunc=None) -> list[Image.Image]:
    """Faces for the given inputs, always computed in zero-padded batches of RENDER_BATCH.

    CPU kernels are chosen by batch size and may round differently for 1 face than for 6;
    with one fixed batch shape every face comes out bit-identical whether it is drawn alone
    or in a grid, at any position, which is what makes a recipe reproduce a face exactly.
    `trunc` (n,) is a style-based generator's truncation; the others' is in their noise already, so they ignore it.
    """
    generator.eval()
    device = next(generator.parameters()).device
    low_precision = generator.render_precision == "bf16"
    if low_precision:
        # the memory order changes the rounding too: always the same one, so pixels stay a recipe's
        generator.to(memory_format=torch.channels_last)
    images = []
    for start in range(0, len(noise), RENDER_BATCH):
        part = slice(start, start + RENDER_BATCH)
        count = len(noise[part])
        inputs = (noise, hair, eyes) if trunc is None else (noise, hair, eyes, trunc)
        padded = [torch.cat([t[part], t.new_zeros(RENDER_BATCH - count, *t.shape[1:])]).to(device) for t in inputs]
        with inference_autocast(device, enabled=low_precision):
            if styled(generator):
                z, hair_w, eyes_w, psi = padded
                faces = generator(z, psi, noise="fixed", hair=hair_w, eyes=eyes_w)
            else:
                faces = generator(*padded[:3])
            images += to_images(faces[:count].float())
    return images


def avatars(recipe: Recipe | str, generator: AvatarGenerator | None = None) -> tuple[list[Image.Image], list[Recipe]]:
    """The faces of a recipe (64×64 PIL images) and each face's own one-face recipe."""
    recipe = Recipe.parse(recipe) if isinstance(recipe, str) else recipe
    generator = generator or load_generator(recipe.version)
    images = render(generator, *recipe_inputs(recipe, noise_size(generator), scaled=not styled(generator)))
    return images, [recipe.face(k) for k in range(recipe.n)]


def path_inputs(endpoints: list[Recipe], frames: int, mode: str, noise_dim: int, closed: bool = False, scaled: bool = True):
    """Noise, colour weights and truncation for `frames` frames along a path through one-face recipes.

    Noise follows `mode` (slerp or lerp); colours always move linearly between one-hots (and so
    does the colour embedding, a linear function of them), the truncation too. A closed path
    returns to its first endpoint and leaves out the duplicate last frame, so it loops.
    """
    if mode not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not {mode!r}")
    points = [recipe_inputs(r, noise_dim, scaled) for r in endpoints]
    if closed:
        points.append(points[0])
    legs = len(points) - 1
    noise, hair, eyes, trunc = [], [], [], []
    positions = np.linspace(0, legs, frames, endpoint=not closed)
    for position in positions:
        leg = min(int(position), legs - 1)
        t = float(position - leg)
        (za, ha, ea, ta), (zb, hb, eb, tb) = points[leg], points[leg + 1]
        noise.append(INTERPOLATIONS[mode](za[0], zb[0], t))
        hair.append(lerp(ha[0], hb[0], t))
        eyes.append(lerp(ea[0], eb[0], t))
        trunc.append(torch.lerp(ta[0], tb[0], t))  # exactly either end at t = 0 and 1
    return torch.stack(noise), torch.stack(hair), torch.stack(eyes), torch.stack(trunc)


def first_face(recipe: Recipe | str) -> Recipe:
    recipe = Recipe.parse(recipe) if isinstance(recipe, str) else recipe
    return recipe.face(0)


def morph(start: Recipe | str, end: Recipe | str, frames: int = 60, mode: str = "slerp", generator: AvatarGenerator | None = None) -> list[Image.Image]:
    """Frames from the first face of `start` to the first face of `end`, both included."""
    check_frames(frames)
    start, end = first_face(start), first_face(end)
    if start.version != end.version:
        raise ValueError(f"a morph needs two recipes of one generator, not {start.prefix} and {end.prefix}")
    generator = generator or load_generator(start.version)
    return render(generator, *path_inputs([start, end], frames, mode, noise_size(generator), scaled=not styled(generator)))


def walk(seed: int, stops: int = 4, frames: int = 60, mode: str = "slerp", hair: str = RANDOM, eyes: str = RANDOM, trunc: float = 1.0,
         generator: AvatarGenerator | None = None, version: int = LATEST):
    """A looping walk through `stops` random faces of generator `version`; returns (frames, the stops' one-face recipes)."""
    check_frames(frames)
    if isinstance(stops, bool) or not isinstance(stops, int) or not 2 <= stops <= 16:
        raise ValueError(f"a walk visits 2 to 16 faces, not {stops!r}")
    if frames < stops:
        raise ValueError(f"a walk through {stops} faces needs at least {stops} frames")
    recipe = Recipe(hair, eyes, seed, stops, trunc, version)
    endpoints = [recipe.face(k) for k in range(stops)]
    generator = generator or load_generator(version)
    inputs = path_inputs(endpoints, frames, mode, noise_size(generator), closed=True, scaled=not styled(generator))
    return render(generator, *inputs), endpoints
