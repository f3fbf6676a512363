"""A tiny name -> object registry (datasets, probes, presets) and the entry-point discovery
that methods and variants share: both are plugins, found, listed and loaded the same way."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from imbssl_bench.errors import UserError

T = TypeVar("T")

DISTRIBUTION = "imbssl-bench"
# The entry-point groups plugins register in, by kind (the rooms that load them import torch;
# these names do not).
GROUPS = {
    "method": "imbssl_bench.methods",
    "variant": "imbssl_bench.variants",
    "backbone": "imbssl_bench.backbones",
}


def group_entry_points(kind: str) -> list[EntryPoint]:
    """The entry points registered for plugin `kind` ("method", "variant", "backbone"),
    read without loading any of them."""
    return list(entry_points(group=GROUPS[kind]))


def plugin_source(ep: EntryPoint, name: str) -> dict[str, str | None] | None:
    """Where entry point `ep` (registering `name`) comes from: its distribution's name and
    version, or None when it is built in (declared by imbssl-bench itself)."""
    dist = ep.dist
    if dist is not None and re.sub(r"[-_.]+", "-", dist.name).lower() == DISTRIBUTION:
        return None
    return {
        "name": name,
        "dist": dist.name if dist else None,
        "version": dist.version if dist else None,
    }


def source_hash(ep: EntryPoint) -> str | None:
    """A hash of a plugin's Python files: those its distribution installed, or for an
    editable install (which installs none) the working copy of the entry point's top-level
    package. A plugin edited without a version bump so gets new run ids. None when no file
    can be read (e.g. a zipped install)."""
    installed = list(ep.dist.files or []) if ep.dist else []
    files = [
        (Path(str(f)), Path(str(f.locate())))
        for f in installed
        if f.suffix == ".py" and not f.name.startswith("__editable__")
    ]
    return _hash_files(files or _working_copy(ep.module.split(".")[0]))


def _hash_files(files: list[tuple[Path, Path]]) -> str | None:
    """A hash of (name, content) pairs; None when there are none or one cannot be read."""
    digest = hashlib.sha256()
    for name, path in sorted(files):
        try:
            digest.update(str(name).encode() + b"\0" + path.read_bytes())
        except OSError:
            return None
    return digest.hexdigest()[:16] if files else None


def _working_copy(top: str) -> list[tuple[Path, Path]]:
    """The Python files of top-level package (or module) `top`, found without importing it."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    roots = [Path(d) for d in spec.submodule_search_locations or []]
    files = [(p.relative_to(d), p) for d in roots for p in sorted(d.rglob("*.py"))]
    if not files and spec.origin and spec.origin.endswith(".py"):
        files = [(Path(Path(spec.origin).name), Path(spec.origin))]
    return files


def own_source_hash() -> str | None:
    """A hash of imbssl-bench's own Python files, those this process imports."""
    return _hash_files(_working_copy(__name__.split(".")[0]))


def builtin_names(kind: str) -> set[str]:
    """The names imbssl-bench itself registers for plugin `kind` ("method", "variant",
    "backbone"), read from its entry points without loading any of them."""
    return {ep.name for ep in group_entry_points(kind) if plugin_source(ep, ep.name) is None}


@dataclass(frozen=True)
class PluginInfo:
    """One entry point of a plugin group: `obj` when it loaded and passed the group's check,
    else `error`."""

    name: str
    origin: str  # the distribution that declares the entry point
    version: str
    target: str  # "module:attribute"
    obj: Any = None
    error: str | None = None
    plugin: dict[str, str | None] | None = None  # `plugin_source`: None when built in

    @property
    def description(self) -> str:
        return getattr(self.obj, "description", "") if self.obj is not None else ""


def load_plugin(ep: EntryPoint, check: Callable[[Any, str], str | None]) -> PluginInfo:
    """Load `ep`; `check(obj, name)` says what is wrong with the loaded object (None: fine).
    A plugin that fails to load is reported, never raised: it must not break the others."""
    dist = ep.dist
    origin, version = (dist.name, dist.version) if dist else ("?", "?")
    source = plugin_source(ep, ep.name)
    try:
        obj = ep.load()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        return PluginInfo(ep.name, origin, version, ep.value, None, error, source)
    if source is not None:  # a plugin's code is part of its runs' identity, not only its version
        source = {**source, "source": source_hash(ep)}
    problem = check(obj, ep.name)
    if problem is not None:
        return PluginInfo(ep.name, origin, version, ep.value, None, problem, source)
    return PluginInfo(ep.name, origin, version, ep.value, obj, None, source)


def load_group(
    eps: Iterable[EntryPoint], check: Callable[[Any, str], str | None]
) -> dict[str, list[PluginInfo]]:
    """Every entry point of a group by name (a list: more than one entry is a name clash)."""
    found: dict[str, list[PluginInfo]] = {}
    seen: set[tuple[str, str]] = set()
    for ep in eps:
        if (ep.name, ep.value) in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        found.setdefault(ep.name, []).append(load_plugin(ep, check))
    return dict(sorted(found.items()))


def pick_plugin(found: dict[str, list[PluginInfo]], name: str, kind: str) -> PluginInfo:
    """The one loaded plugin `name` of `found`; a `UserError` when it is unknown, registered
    twice, or failed to load."""
    infos = found.get(name)
    if not infos:
        valid = ", ".join(found) or "(none: is imbssl-bench installed with pip?)"
        raise UserError(f"unknown {kind} '{name}'; valid: {valid}")
    if len(infos) > 1:
        origins = " and ".join(f"{i.origin} ({i.target})" for i in infos)
        raise UserError(f"{kind} '{name}' is registered by {origins}; uninstall one of them")
    if infos[0].obj is None:
        raise UserError(
            f"{kind} '{name}' from {infos[0].origin} failed to load ({infos[0].error}); "
            "fix or uninstall that plugin"
        )
    return infos[0]


class Registry(Generic[T]):
    """Maps names to objects; unknown names raise a `UserError` that lists the valid ones.

    Examples:
        >>> probes = Registry[int]("probe")
        >>> probes.add("knn", 1)
        >>> probes.get("knn")
        1
        >>> probes.names()
        ['knn']
    """

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint
        self._items: dict[str, T] = {}

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def wrap(obj: T) -> T:
            self.add(name, obj)
            return obj

        return wrap

    def get(self, name: str) -> T:
        if name not in self._items:
            valid = ", ".join(self.names()) or "(none)"
            raise UserError(f"unknown {self.kind} '{name}'; valid: {valid}{self.hint}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))
