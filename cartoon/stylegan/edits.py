"""Feature-map edits as small JSON documents that apply to any face of one generator.

    {"block": 3, "channels": [12, 40], "weights": [1.0, -0.5], "amount": 4,
     "mask": [[0, 0, …], …]}                    # block 3's input side × side, values 0 to 1

An edit adds `amount · weight_i · mask` to channel `channels[i]` of a block's input (the
generator's `FeatureEdit`). The mask is kept at the block's input resolution, one value per
cell a user sees in the feature-map view, so a saved edit means the same cells on every seed.
Everything is checked when an edit is built or read; `check(generator)` adds what needs the
generator (block, channel and mask size), each with a message that says what to fix.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from cartoon.stylegan.model import FeatureEdit, Generator

MAX_AMOUNT = 100.0  # block inputs are leaky-ReLU outputs of about unit size: far past any useful edit
MAX_CHANNELS = 64
MAX_JSON_BYTES = 200_000
KEYS = ("block", "channels", "weights", "mask", "amount")


def input_side(generator: Generator, block: int) -> int:
    """Side of block `block`'s input: the 4×4 constant for block 0, else the block before's output."""
    return 4 if block == 0 else generator.block_sizes[block - 1]


def parse_channels(text: str) -> tuple[list[int], list[float]]:
    """`12, 40:-0.5` → channels [12, 40] and weights [1.0, -0.5] (a channel's weight defaults to 1)."""
    channels, weights = [], []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        channel, sep, weight = (piece.strip() for piece in part.partition(":"))
        if not channel.isdigit() or len(channel) > 6:
            raise ValueError(f"channels are written like 12, 40:-0.5 (channel:weight), not {part[:40]!r}")
        channels.append(int(channel))
        try:
            weights.append(float(weight) if sep else 1.0)
        except ValueError:
            raise ValueError(f"channel {channel}'s weight must be a number, not {weight[:40]!r}") from None
    if not channels:
        raise ValueError("name at least one channel to edit, e.g. 12, 40:-0.5")
    return channels, weights


def parse_cells(text: str) -> list[tuple[int, int]]:
    """`5,3; 5,4` → [(5, 3), (5, 4)]: (row, column) cells of the feature-map grid."""
    cells = []
    for part in filter(None, (p.strip() for p in str(text).split(";"))):
        row, sep, column = (piece.strip() for piece in part.partition(","))
        if not (sep and row.isdigit() and column.isdigit() and len(row) + len(column) <= 8):
            raise ValueError(f"cells are written like 5,3; 5,4 (row,column), not {part[:40]!r}")
        cells.append((int(row), int(column)))
    return cells


def format_cells(cells) -> str:
    return "; ".join(f"{row},{column}" for row, column in cells)


def finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"edit {name} must be a finite number, not {str(value)[:40]!r}")
    return float(value)


def whole(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"edit {name} must be a whole number from 0, not {str(value)[:40]!r}")
    return value


@dataclass(frozen=True)
class Edit:
    block: int
    channels: tuple[int, ...]
    weights: tuple[float, ...]
    mask: tuple[tuple[float, ...], ...]
    amount: float = 1.0

    def __post_init__(self):
        whole("block", self.block)
        if not isinstance(self.channels, (list, tuple)) or not 1 <= len(self.channels) <= MAX_CHANNELS:
            raise ValueError(f"an edit needs 1 to {MAX_CHANNELS} channels, not {str(self.channels)[:40]}")
        channels = tuple(whole("channel", c) for c in self.channels)
        if len(set(channels)) != len(channels):
            raise ValueError(f"edit channels must differ from each other, not {list(channels)}")
        if not isinstance(self.weights, (list, tuple)) or len(self.weights) != len(channels):
            raise ValueError(f"an edit needs one weight per channel: {len(channels)} channels, weights {str(self.weights)[:40]}")
        weights = tuple(finite("weight", w) for w in self.weights)
        if not isinstance(self.mask, (list, tuple)) or not self.mask or not all(isinstance(r, (list, tuple)) for r in self.mask):
            raise ValueError("edit mask must be a non-empty list of rows")
        if any(len(row) != len(self.mask) for row in self.mask):
            raise ValueError(f"edit mask must be square (side × side), not rows of {sorted({len(r) for r in self.mask})} for {len(self.mask)} rows")
        mask = tuple(tuple(finite("mask value", v) for v in row) for row in self.mask)
        if any(not 0 <= v <= 1 for row in mask for v in row):
            raise ValueError("edit mask values must be from 0 to 1")
        amount = finite("amount", self.amount)
        if abs(amount) > MAX_AMOUNT:
            raise ValueError(f"edit amount must be from {-MAX_AMOUNT:g} to {MAX_AMOUNT:g}, not {amount:g}")
        for name, value in (("channels", channels), ("weights", weights), ("mask", mask), ("amount", amount)):
            object.__setattr__(self, name, value)

    @classmethod
    def painted(cls, block: int, channels, cells, side: int, weights=None, amount: float = 1.0) -> Edit:
        """An edit whose mask is 1 at the (row, column) `cells` of a side × side grid, 0 elsewhere."""
        mask = [[0.0] * side for _ in range(side)]
        for row, column in cells:
            if not (0 <= row < side and 0 <= column < side):
                raise ValueError(f"cell ({row}, {column}) is outside block {block}'s {side}×{side} grid")
            mask[row][column] = 1.0
        channels = list(channels)
        return cls(block, tuple(channels), tuple(weights or [1.0] * len(channels)), tuple(map(tuple, mask)), amount)

    @property
    def cells(self) -> list[tuple[int, int]]:
        return [(r, c) for r, row in enumerate(self.mask) for c, value in enumerate(row) if value > 0]

    def with_amount(self, amount: float) -> Edit:
        return replace(self, amount=amount)

    def check(self, generator: Generator) -> Edit:
        """The edit, if it fits `generator`; else a ValueError naming the block, channel or size."""
        blocks = len(generator.blocks)
        if self.block >= blocks:
            raise ValueError(f"unknown block {self.block}: this generator has blocks 0 to {blocks - 1}")
        available = generator.block_channels[self.block]
        wrong = [c for c in self.channels if c >= available]
        if wrong:
            raise ValueError(f"unknown channel {wrong[0]}: block {self.block}'s input has channels 0 to {available - 1}")
        side = input_side(generator, self.block)
        if len(self.mask) != side:
            raise ValueError(f"block {self.block}'s input is {side}×{side}: the mask must be too, not {len(self.mask)}×{len(self.mask)}")
        return self

    def feature_edit(self, amount: float | None = None) -> FeatureEdit:
        return FeatureEdit(self.block, self.channels, self.weights, torch.tensor(self.mask), self.amount if amount is None else amount)

    def to_json(self) -> str:
        return json.dumps({key: getattr(self, key) for key in KEYS}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Edit:
        if len(text) > MAX_JSON_BYTES:
            raise ValueError(f"edit JSON is {len(text)} bytes: an edit is at most {MAX_JSON_BYTES}")
        try:
            fields = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"edit is not valid JSON: {error}") from None
        if not isinstance(fields, dict):
            raise ValueError("edit JSON must be an object with block, channels, weights, mask and amount")
        unknown = sorted(set(fields) - set(KEYS))
        missing = [key for key in KEYS[:4] if key not in fields]
        if unknown or missing:
            raise ValueError(f"edit JSON: unknown keys {unknown}, missing keys {missing}; expected {', '.join(KEYS)}")
        return cls(**fields)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path, generator: Generator | None = None) -> Edit:
        path = Path(path)
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ValueError(f"{path.name} is too large to be an edit ({path.stat().st_size} bytes)")
        edit = cls.from_json(path.read_bytes())
        return edit.check(generator) if generator is not None else edit

    def to_text(self) -> str:
        """The edit in one recipe field: compressed JSON in URL-safe base64."""
        return base64.urlsafe_b64encode(zlib.compress(self.to_json().encode(), 9)).decode().rstrip("=")

    @classmethod
    def from_text(cls, text: str) -> Edit:
        unpack = zlib.decompressobj()
        try:
            data = unpack.decompress(base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True), MAX_JSON_BYTES + 1)
        except (ValueError, zlib.error):
            data = None
        if data is None or not unpack.eof:
            raise ValueError(f"recipe field edit is not an encoded edit: {text[:40]!r}")
        return cls.from_json(data)
