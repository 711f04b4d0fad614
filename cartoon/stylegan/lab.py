"""The Latent Lab: faces of the style-based generator named by recipes, moved along directions in
w, style-mixed, interpolated, viewed and edited in their feature maps, and animated.

    from cartoon.stylegan.lab import Recipe, animate, feature_overlay, render
    from cartoon.stylegan.edits import Edit
    face = render(Recipe.parse("stylegan:v2;seed=7;psi=0.7;dir=hair-blue:2,sefa3:-1.5"))
    frames = animate(Recipe(seed=7), Edit.load("mouth.json"), frames=24)

A recipe names one face exactly: z from its seed, mapped to w and pulled toward the mean w by
ψ; optionally mixed (styles from `cross` on come from the face of seed `mix`); moved along named
directions (`cartoon.stylegan.directions`); drawn with the generator's stored noise and an
optional feature-map edit (`cartoon.stylegan.edits`). Faces are always drawn one per batch, so a
face's pixels never depend on what else is drawn with it. v2 recipes move eye colours along
per-style directions that leave the hair; v1 recipes keep the older whitened ones, and their pixels.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, replace

import torch
from PIL import Image, ImageDraw

from cartoon.images import to_image
from cartoon.latent import INTERPOLATIONS, check_frames
from cartoon.media import grid, upscale
from cartoon.recipes import finite_number, split_recipe, whole_number
from cartoon.stylegan.directions import Progress, default_amount, direction_vectors
from cartoon.stylegan.edits import Edit, input_side
from cartoon.stylegan.model import Generator

RECIPE_FAMILY = "stylegan"
MODEL_VERSIONS = {1: "stylegan", 2: "stylegan"}  # recipe version → registered model (cartoon.hub); v2 changed the eye directions
LATEST = max(MODEL_VERSIONS)
MAX_SEED = 2**32 - 1
MAX_FACES = 64
PSI_RANGE = (0.0, 1.5)
MAX_DIRECTION_AMOUNT = 20.0
DIRECTION_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
OVERLAY_SIDE = 256  # the feature-map view's size: a 64² face at 4×, cells of 8–64 pixels
SHEET_STEPS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # a direction sheet's columns, in default amounts
OVERLAY_ALPHA = 0.65  # opacity of the strongest cell; weaker cells fade toward the face


@dataclass(frozen=True)
class Recipe:
    """Everything that decides one face; `str(recipe)` and `Recipe.parse` round-trip."""

    seed: int = 0
    psi: float = 1.0
    directions: tuple[tuple[str, float], ...] = ()
    mix: int | None = None
    cross: int | None = None
    edit: Edit | None = None
    version: int = LATEST

    def __post_init__(self):
        for name in ("seed", "mix"):
            value = getattr(self, name)
            if value is None and name == "mix":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
                raise ValueError(f"{name} must be a whole number from 0 to {MAX_SEED}, not {value!r}")
        if isinstance(self.psi, bool) or not isinstance(self.psi, (int, float)) or not PSI_RANGE[0] <= self.psi <= PSI_RANGE[1]:
            raise ValueError(f"psi (truncation) must be a number from {PSI_RANGE[0]} to {PSI_RANGE[1]}, not {self.psi!r}")
        if (self.mix is None) != (self.cross is None):
            raise ValueError("style mixing needs both mix (the second seed) and cross (the first style it sets)")
        if self.cross is not None and (isinstance(self.cross, bool) or not isinstance(self.cross, int) or self.cross < 0):
            raise ValueError(f"cross must be a whole number from 0, not {self.cross!r}")
        pairs = tuple(self.directions.items()) if isinstance(self.directions, dict) else tuple(map(tuple, self.directions))
        for name, amount in pairs:
            if not isinstance(name, str) or not DIRECTION_NAME.fullmatch(name):
                raise ValueError(f"a direction is named like hair-blue or sefa3, not {str(name)[:40]!r}")
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not abs(amount) <= MAX_DIRECTION_AMOUNT:
                raise ValueError(f"direction {name}'s amount must be from {-MAX_DIRECTION_AMOUNT:g} to {MAX_DIRECTION_AMOUNT:g}, not {amount!r}")
        if len({name for name, _ in pairs}) != len(pairs):
            raise ValueError("each direction may be named once in a recipe")
        if self.edit is not None and not isinstance(self.edit, Edit):
            raise ValueError(f"edit must be an Edit, not {type(self.edit).__name__}")
        if self.version not in MODEL_VERSIONS:
            raise ValueError(f"unknown generator version {self.version!r}; known: {', '.join(map(str, MODEL_VERSIONS))}")
        object.__setattr__(self, "directions", tuple((name, float(amount)) for name, amount in pairs))

    def __str__(self) -> str:
        fields = [f"{RECIPE_FAMILY}:v{self.version}", f"seed={self.seed}", f"psi={exact(self.psi)}"]
        if self.directions:
            fields.append("dir=" + ",".join(f"{name}:{exact(amount)}" for name, amount in self.directions))
        if self.mix is not None:
            fields += [f"mix={self.mix}", f"cross={self.cross}"]
        if self.edit is not None:
            fields.append(f"edit={self.edit.to_text()}")
        return ";".join(fields)

    @classmethod
    def parse(cls, text: str) -> Recipe:
        """Read `stylegan:vN;seed=…;psi=…;dir=name:amount,…;mix=…;cross=…;edit=…` (omitted fields take defaults)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"empty recipe; expected something like {cls(7, 0.7, {'hair-blue': 2.0})}")
        version, fields = split_recipe(text, {f"{RECIPE_FAMILY}:v{v}": v for v in MODEL_VERSIONS})
        unknown = sorted(set(fields) - set(FIELD_READERS))
        if unknown:
            raise ValueError(f"unknown recipe field {unknown[0][:40]!r}; known: {', '.join(FIELD_READERS)}")
        values = {FIELD_NAMES.get(key, key): FIELD_READERS[key](key, value) for key, value in fields.items()}
        return cls(**values, version=version)

    def face(self, k: int) -> Recipe:
        """The same recipe for seed + k: face k of a grid."""
        return replace(self, seed=self.seed + k)


def exact(number: float) -> str:
    """A number as short as it reads back exactly, so that a recipe's text draws its very pixels."""
    short = f"{number:g}"
    return short if float(short) == number else repr(float(number))


def parse_directions(text: str) -> tuple[tuple[str, float], ...]:
    """`hair-blue:2,sefa3:-1.5` → (("hair-blue", 2.0), ("sefa3", -1.5))."""
    pairs = []
    for part in text.split(","):
        name, sep, amount = (piece.strip() for piece in part.partition(":"))
        if not sep:
            raise ValueError(f"direction {part[:40]!r} is not name:amount (e.g. hair-blue:2)")
        pairs.append((name.lower(), finite_number(f"dir {name[:32]}", amount)))
    return tuple(pairs)


# how each recipe field's text is read, and the Recipe attribute it sets when named otherwise
FIELD_READERS = {
    "seed": whole_number,
    "psi": finite_number,
    "dir": lambda key, value: parse_directions(value),
    "mix": whole_number,
    "cross": whole_number,
    "edit": lambda key, value: Edit.from_text(value),
}
FIELD_NAMES = {"dir": "directions"}


@functools.lru_cache(maxsize=len(MODEL_VERSIONS))
def load_generator(version: int) -> Generator:
    """The generator of a recipe version (Hub, Hub cache or weights/), loaded once per process."""
    from cartoon.hub import load_model

    return load_model(MODEL_VERSIONS[version])


def mapped(generator: Generator, seed: int, psi: float) -> torch.Tensor:
    """(1, latent_dim): the truncated w of a seed."""
    z = torch.randn(1, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    return generator.truncate(generator.mapping(z.to(generator.w_avg.device)), psi)


@torch.no_grad()
def recipe_styles(recipe: Recipe, generator: Generator, progress: Progress | None = None) -> torch.Tensor:
    """(1, num_ws, latent_dim): the recipe's per-layer styles, mixed and moved along its directions."""
    w = mapped(generator, recipe.seed, recipe.psi)
    w_mix = None if recipe.mix is None else mapped(generator, recipe.mix, recipe.psi)
    ws = generator.styles(w, w_mix, recipe.cross)
    if recipe.directions:
        vectors = direction_vectors(generator, [name for name, _ in recipe.directions], progress=progress, version=recipe.version)
        for name, amount in recipe.directions:
            ws = ws + amount * vectors[name]
    return ws


def recipe_edits(recipe: Recipe, generator: Generator, amount: float | None = None) -> list:
    return [] if recipe.edit is None else [recipe.edit.check(generator).feature_edit(amount)]


@torch.no_grad()
def draw(generator: Generator, ws: torch.Tensor, edits=(), features=()):
    """The face of one set of styles, with the stored noise; with `features`, also those block inputs."""
    generator.eval()
    if features:
        images, taken = generator.synthesis(ws, noise="fixed", edits=edits, features=features)
        return to_image(images.float()), {k: v[0].float().cpu() for k, v in taken.items()}
    return to_image(generator.synthesis(ws, noise="fixed", edits=edits).float())


def render(recipe: Recipe | str, generator: Generator | None = None, progress: Progress | None = None) -> Image.Image:
    """The recipe's face (PIL, the generator's resolution)."""
    recipe = Recipe.parse(recipe) if isinstance(recipe, str) else recipe
    generator = generator or load_generator(recipe.version)
    return draw(generator, recipe_styles(recipe, generator, progress), recipe_edits(recipe, generator))


def faces(recipe: Recipe | str, n: int, generator: Generator | None = None) -> tuple[list[Image.Image], list[Recipe]]:
    """Faces of seeds seed … seed + n − 1, everything else as in the recipe, and their recipes."""
    recipe = Recipe.parse(recipe) if isinstance(recipe, str) else recipe
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_FACES:
        raise ValueError(f"n (number of faces) must be a whole number from 1 to {MAX_FACES}, not {n!r}")
    if recipe.seed + n - 1 > MAX_SEED:
        raise ValueError(f"seeds {recipe.seed} … {recipe.seed + n - 1} go past {MAX_SEED}")
    generator = generator or load_generator(recipe.version)
    recipes = [recipe.face(k) for k in range(n)]
    return [render(r, generator) for r in recipes], recipes


def render_grid(recipe: Recipe | str, n: int, generator: Generator | None = None, scale: int = 1) -> Image.Image:
    return upscale(grid(faces(recipe, n, generator)[0]), scale)


def direction_sheet(recipe: Recipe | str, names, steps=SHEET_STEPS, generator: Generator | None = None) -> Image.Image:
    """One row per direction: the recipe's face moved by `steps` × the direction's default amount,
    so what each direction changes (and what to call a SeFa slider) shows at a glance."""
    recipe = Recipe.parse(recipe) if isinstance(recipe, str) else recipe
    generator = generator or load_generator(recipe.version)
    shown = [render(replace(recipe, directions=dict(recipe.directions) | {name: step * default_amount(name)}), generator)
             for name in names for step in steps]
    return grid(shown, columns=len(steps))


def interpolate(start: Recipe | str, end: Recipe | str, frames: int = 30, mode: str = "lerp", generator: Generator | None = None) -> list[Image.Image]:
    """Frames from `start`'s face to `end`'s in w (their styles, after mixing and directions);
    each recipe's edit fades out, the other's in. The ends are the recipes' own pixels."""
    check_frames(frames)
    if mode not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not {mode!r}")
    start, end = (Recipe.parse(r) if isinstance(r, str) else r for r in (start, end))
    if MODEL_VERSIONS[start.version] != MODEL_VERSIONS[end.version]:
        raise ValueError(f"an interpolation needs two recipes of one generator, not v{start.version} and v{end.version}")
    generator = generator or load_generator(start.version)
    ends = [recipe_styles(r, generator) for r in (start, end)]
    shown = []
    for i in range(frames):
        t = i / (frames - 1)
        # the ends themselves rather than blends at 0 and 1, which float rounding could miss by a bit
        ws = ends[0] if t == 0 else ends[1] if t == 1 else INTERPOLATIONS[mode](ends[0], ends[1], t)
        edits = [e for r, share in ((start, 1 - t), (end, t)) if r.edit is not None and share > 0
                 for e in recipe_edits(r, generator, r.edit.amount * share)]
        shown.append(draw(generator, ws, edits))
    return shown


def animate(recipe: Recipe | str, edit: Edit | None = None, frames: int = 24, amount: float | None = None,
            generator: Generator | None = None) -> list[Image.Image]:
    """A loop: `edit` (default: the recipe's own) swept 0 → amount → 0 over `frames` frames, eased.

    The first frame is the face without the edit; the loop leaves out the repeat of it at the end."""
    check_frames(frames)
    recipe = Recipe.parse(recipe) if isinstance(recipe, str) else recipe
    edit = edit or recipe.edit
    if edit is None:
        raise ValueError("an animation needs an edit: paint one, or give an edit JSON")
    generator = generator or load_generator(recipe.version)
    edit = edit.check(generator)
    amount = edit.amount if amount is None else edit.with_amount(amount).amount
    ws = recipe_styles(replace(recipe, edit=None), generator)
    return [draw(generator, ws, [edit.feature_edit(amount * (1 - math.cos(2 * math.pi * i / frames)) / 2)]) for i in range(frames)]


# --- feature maps -----------------------------------------------------------------------------


def feature_maps(recipe: Recipe | str, block: int, generator: Generator | None = None) -> tuple[Image.Image, torch.Tensor]:
    """The face and block `block`'s input (channels, side, side), after the recipe's edit."""
    recipe = Recipe.parse(recipe) if isinstance(recipe, str) else recipe
    generator = generator or load_generator(recipe.version)
    check_block(generator, block)
    face, taken = draw(generator, recipe_styles(recipe, generator), recipe_edits(recipe, generator), features=[block])
    return face, taken[block]


def check_block(generator: Generator, block: int) -> int:
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < len(generator.blocks):
        raise ValueError(f"unknown block {block!r}: this generator has blocks 0 to {len(generator.blocks) - 1}")
    return block


def check_channel(maps: torch.Tensor, block: int, channel: int) -> int:
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < len(maps):
        raise ValueError(f"unknown channel {channel!r}: block {block}'s input has channels 0 to {len(maps) - 1}")
    return channel


def block_choices(generator: Generator) -> list[tuple[str, int]]:
    """(label, block) of every block whose input can be viewed and edited."""
    return [(f"block {k}: {input_side(generator, k)}×{input_side(generator, k)}, {generator.block_channels[k]} channels", k)
            for k in range(len(generator.blocks))]


def overlay(face: Image.Image, values: torch.Tensor, side: int = OVERLAY_SIDE, marked=()) -> Image.Image:
    """The face enlarged to `side`, one cell per value: green where positive, red where negative,
    more opaque the larger the value against the largest in the map; cells outlined, `marked`
    (row, column) cells — an edit's painted ones — framed in yellow."""
    cells = len(values)
    strength = (values.abs() / values.abs().max().clamp_min(1e-8) * OVERLAY_ALPHA * 255).round().byte()
    colour = torch.zeros(cells, cells, 4, dtype=torch.uint8)
    colour[..., 0] = torch.where(values < 0, 255, 0)
    colour[..., 1] = torch.where(values > 0, 200, 0)
    colour[..., 3] = strength
    enlarged = face.convert("RGBA").resize((side, side), Image.NEAREST)
    tint = Image.fromarray(colour.numpy(), "RGBA").resize((side, side), Image.NEAREST)
    shown = Image.alpha_composite(enlarged, tint)
    pen = ImageDraw.Draw(shown)
    for k in range(1, cells):
        at = round(k * side / cells)
        pen.line([(at, 0), (at, side)], fill=(255, 255, 255, 90))
        pen.line([(0, at), (side, at)], fill=(255, 255, 255, 90))
    for row, column in marked:
        box = [round(column * side / cells), round(row * side / cells), round((column + 1) * side / cells) - 1, round((row + 1) * side / cells) - 1]
        pen.rectangle(box, outline=(255, 220, 0, 255), width=2)
    return shown.convert("RGB")


def feature_overlay(recipe: Recipe | str, block: int, channel: int, generator: Generator | None = None, side: int = OVERLAY_SIDE,
                    marked=()) -> Image.Image:
    """The face under a grid of red (negative) / green (positive) cells: `channel` of `block`'s input."""
    face, maps = feature_maps(recipe, block, generator)
    return overlay(face, maps[check_channel(maps, block, channel)], side, marked)


def cell_at(x: float, y: float, cells: int, side: int = OVERLAY_SIDE) -> tuple[int, int]:
    """(row, column) of the cell under pixel (x, y) of a feature-map view `side` pixels wide."""
    if not (0 <= x < side and 0 <= y < side):
        raise ValueError(f"({x}, {y}) is outside the {side}×{side} view")
    return int(y * cells // side), int(x * cells // side)


def rank_channels(recipe: Recipe | str, block: int, cell: tuple[int, int], generator: Generator | None = None, top: int | None = None) -> list[tuple[int, float]]:
    """(channel, value) of block `block`'s input at `cell` (row, column), the most active first."""
    recipe = Recipe.parse(recipe) if isinstance(recipe, str) else recipe
    generator = generator or load_generator(recipe.version)
    side = input_side(generator, check_block(generator, block))
    row, column = cell
    if not (0 <= row < side and 0 <= column < side):
        raise ValueError(f"cell ({row}, {column}) is outside block {block}'s {side}×{side} grid")
    _, maps = feature_maps(recipe, block, generator)
    values = maps[:, row, column]
    order = values.argsort(descending=True)[:top]
    return [(int(c), float(values[c])) for c in order]
