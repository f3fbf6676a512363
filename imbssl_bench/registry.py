"""A tiny name -> object registry shared by datasets, variants, probes and presets."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from typing import Generic, TypeVar

from imbssl_bench.errors import UserError

T = TypeVar("T")

DISTRIBUTION = "imbssl-bench"


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
