"""Variants wrap the pre-training of any method (``base`` = plain training).

A variant receives the built method and the imbalanced subset and returns the backbone to
evaluate, the training stats, its compute and any diagnostics for the record. Variants are
plugins found through the ``imbssl_bench.variants`` entry-point group, the built-ins
registered there exactly as a third-party package's would be; each entry point names a
`Variant` object. Their options are an ``Args`` dataclass, given with ``--variant-arg
key=value`` and stored resolved in the record as ``variant_args``. The built-in variants in
this package use `imbssl_bench.api` and nothing else of the harness, as a plugin does
(docs/plugins.md). This module discovers them.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

from imbssl_bench.api import Variant
from imbssl_bench.registry import (
    GROUPS,
    PluginInfo,
    group_entry_points,
    load_group,
    pick_plugin,
)

GROUP = GROUPS["variant"]


def _check(obj: Any, name: str) -> str | None:
    if not isinstance(obj, Variant):
        return "not an imbssl_bench.api.Variant"
    if obj.name != name:
        return f"variant says name '{obj.name}' but is registered as '{name}'"
    return None


@cache
def discover() -> dict[str, list[PluginInfo]]:
    """All registered variants by name (a list: more than one entry means a name clash)."""
    return load_group(group_entry_points("variant"), _check)


def list_variants() -> list[PluginInfo]:
    return [info for infos in discover().values() for info in infos]


def variant_names() -> list[str]:
    return list(discover())


def get_variant(name: str) -> Variant:
    return pick_plugin(discover(), name, "variant").obj


def variant_plugin(name: str) -> dict[str, str | None] | None:
    """The distribution and version of plugin variant `name`; None for a built-in."""
    return pick_plugin(discover(), name, "variant").plugin


def variant_options(variant: Variant) -> list[str]:
    """The option names a variant takes (its ``Args`` fields)."""
    return [f.name for f in dataclasses.fields(variant.Args)]


__all__ = [
    "GROUP",
    "discover",
    "get_variant",
    "list_variants",
    "variant_names",
    "variant_options",
    "variant_plugin",
]
