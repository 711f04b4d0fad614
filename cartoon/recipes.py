"""The text form every generator's recipe shares: `family:vN;key=value;…`.

A generator's own recipe class decides which keys exist and what they mean; this module only
reads the head and the fields, and turns numbers into numbers with messages a user can act on.
"""

from __future__ import annotations

import math
import re


def split_recipe(text: str, heads: dict[str, int]) -> tuple[int, dict[str, str]]:
    """The version named by the recipe's head (a key of `heads`) and its fields, each key once."""
    head, *parts = [part.strip() for part in text.strip().split(";")]
    if head not in heads:
        raise ValueError(f"a recipe starts with {' or '.join(map(repr, heads))}, not {head[:40]!r}")
    fields: dict[str, str] = {}
    for part in parts:
        if not part:
            continue
        key, sep, value = (piece.strip() for piece in part.partition("="))
        if not sep or not key or not value:
            raise ValueError(f"recipe field {part[:40]!r} is not key=value")
        if key in fields:
            raise ValueError(f"recipe field {key!r} is given twice")
        fields[key] = value
    return heads[head], fields


def whole_number(key: str, value: str) -> int:
    # twelve digits bound the integer before any range check, so a huge field cannot cost time
    if not re.fullmatch(r"\d{1,12}", value):
        raise ValueError(f"recipe field {key} must be a whole number, not {value[:40]!r}")
    return int(value)


def finite_number(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"recipe field {key} must be a number, not {value[:40]!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"recipe field {key} must be a finite number, not {value[:40]!r}")
    return number
