"""Method discovery through the ``imbssl_bench.methods`` entry-point group.

Built-in methods register in this package's own ``pyproject.toml`` exactly as plugins do, so
`create_method` knows no method by name. A plugin that fails to import is listed with its
error and does not affect the others; two plugins claiming one name are refused by name.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from torch import nn

from imbssl_bench.config import TrainConfig
from imbssl_bench.methods.base import Method, NoArgs
from imbssl_bench.registry import (
    GROUPS,
    PluginInfo,
    group_entry_points,
    load_group,
    pick_plugin,
)

GROUP = GROUPS["method"]


def _check(obj: Any, name: str) -> str | None:
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        return "not a subclass of imbssl_bench.methods.Method"
    if obj.name != name:
        return f"class says name '{obj.name}' but is registered as '{name}'"
    return None


@cache
def discover() -> dict[str, list[PluginInfo]]:
    """All registered methods by name (a list: more than one entry means a name clash)."""
    return load_group(group_entry_points("method"), _check)


def list_methods() -> list[PluginInfo]:
    return [info for infos in discover().values() for info in infos]


def method_names() -> list[str]:
    return list(discover())


def get_method(name: str) -> type[Method]:
    return pick_plugin(discover(), name, "method").obj


def method_plugin(name: str) -> dict[str, str | None] | None:
    """The distribution and version of plugin method `name`; None for a built-in."""
    return pick_plugin(discover(), name, "method").plugin


def create_method(
    name: str,
    backbone: nn.Module,
    feature_dim: int,
    args: dict | None,
    train: TrainConfig,
    num_classes: int,
) -> Method:
    cls = get_method(name)
    return cls(backbone, feature_dim, cls.make_args(args), train, num_classes)


__all__ = [
    "GROUP",
    "Method",
    "NoArgs",
    "create_method",
    "discover",
    "get_method",
    "list_methods",
    "method_names",
    "method_plugin",
]
