"""Method discovery through the ``imbssl_bench.methods`` entry-point group.

Built-in methods register in this package's own ``pyproject.toml`` exactly as plugins do, so
`create_method` knows no method by name. A plugin that fails to import is listed with its
error and does not affect the others; two plugins claiming one name are refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, partial
from importlib.metadata import EntryPoint, entry_points

from torch import nn

from imbssl_bench.config import TrainConfig
from imbssl_bench.errors import UserError
from imbssl_bench.methods.base import Method, NoArgs
from imbssl_bench.registry import plugin_source

GROUP = "imbssl_bench.methods"


@dataclass(frozen=True)
class MethodInfo:
    name: str
    origin: str  # the distribution that declares the entry point
    version: str
    target: str  # "module:Class"
    cls: type[Method] | None = None
    error: str | None = None
    plugin: dict[str, str | None] | None = None  # `plugin_source`: None when built in

    @property
    def description(self) -> str:
        return self.cls.description if self.cls else ""


def _load(ep: EntryPoint) -> MethodInfo:
    dist = ep.dist
    info = partial(
        MethodInfo,
        ep.name,
        dist.name if dist else "?",
        dist.version if dist else "?",
        ep.value,
        plugin=plugin_source(ep, ep.name),
    )
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not break the others
        return info(error=f"{type(exc).__name__}: {exc}")
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        return info(error="not a subclass of imbssl_bench.methods.Method")
    if obj.name != ep.name:
        return info(error=f"class says name '{obj.name}' but is registered as '{ep.name}'")
    return info(cls=obj)


@cache
def discover() -> dict[str, list[MethodInfo]]:
    """All registered methods by name (a list: more than one entry means a name clash)."""
    found: dict[str, list[MethodInfo]] = {}
    seen: set[tuple[str, str]] = set()
    for ep in entry_points(group=GROUP):
        if (ep.name, ep.value) in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        found.setdefault(ep.name, []).append(_load(ep))
    return dict(sorted(found.items()))


def list_methods() -> list[MethodInfo]:
    return [info for infos in discover().values() for info in infos]


def method_names() -> list[str]:
    return list(discover())


def get_method(name: str) -> type[Method]:
    infos = discover().get(name)
    if not infos:
        valid = ", ".join(method_names()) or "(none: is imbssl-bench installed with pip?)"
        raise UserError(f"unknown method '{name}'; valid: {valid}")
    if len(infos) > 1:
        origins = " and ".join(f"{i.origin} ({i.target})" for i in infos)
        raise UserError(f"method '{name}' is registered by {origins}; uninstall one of them")
    info = infos[0]
    if info.cls is None:
        raise UserError(
            f"method '{name}' from {info.origin} failed to load ({info.error}); "
            "fix or uninstall that plugin"
        )
    return info.cls


def method_plugin(name: str) -> dict[str, str | None] | None:
    """The distribution and version of plugin method `name`; None for a built-in."""
    get_method(name)  # a clear error first
    return discover()[name][0].plugin


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
    "MethodInfo",
    "NoArgs",
    "create_method",
    "discover",
    "get_method",
    "list_methods",
    "method_names",
    "method_plugin",
]
