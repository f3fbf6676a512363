"""Parse and check the CLI's comma lists; every mistake is a one-line `UserError`."""

from __future__ import annotations

import json
import math
from typing import Any

from imbssl_bench.errors import UserError

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed range


def _items(text: str, option: str) -> list[str]:
    items = [x.strip() for x in text.split(",")]
    if not text.strip() or any(not x for x in items):
        example = _EXAMPLES.get(option, "a,b")
        raise UserError(f"{option} '{text}' has an empty element; give a comma list like {example}")
    return list(dict.fromkeys(items))  # drop repeats, keep order


_EXAMPLES = {
    "--ratios": "1,10,100",
    "--seeds": "0,1,2",
    "--method": "simclr,simsiam",
    "--variants": "base",
}


def parse_ratios(text: str) -> tuple[float, ...]:
    """``"1,10,100"`` -> ``(1.0, 10.0, 100.0)``; each ratio n_max / n_min must be >= 1."""
    ratios = []
    for item in _items(text, "--ratios"):
        try:
            value = float(item)
        except ValueError:
            raise UserError(f"--ratios: '{item}' is not a number; use e.g. 1,10,100") from None
        if not math.isfinite(value) or value < 1:
            raise UserError(
                f"--ratios: {item} is not a valid imbalance ratio; rho = n_max / "
                "n_min must be a finite number >= 1 (1 = balanced)"
            )
        ratios.append(value)
    return tuple(dict.fromkeys(ratios))


def parse_seeds(text: str) -> tuple[int, ...]:
    seeds = []
    for item in _items(text, "--seeds"):
        try:
            value = int(item)
        except ValueError:
            raise UserError(f"--seeds: '{item}' is not an integer; use e.g. 0,1,2") from None
        if not 0 <= value <= MAX_SEED:
            raise UserError(f"--seeds: {value} is out of range; seeds are integers 0..{MAX_SEED}")
        seeds.append(value)
    return tuple(dict.fromkeys(seeds))


def parse_names(text: str, option: str) -> tuple[str, ...]:
    return tuple(_items(text, option))


def parse_key_values(items: list[str], option: str) -> dict[str, Any]:
    """``["temperature=0.2", "out_dim=64"]`` -> a dict; values are read as JSON (numbers,
    true/false, null, lists), anything else as a string. Dashes in keys become underscores."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise UserError(f"{option} '{item}' must look like key=value, e.g. temperature=0.2")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    return values
