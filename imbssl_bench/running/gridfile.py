"""Grid files: a TOML table of grid options (`imbssl_bench.running.options.OPTIONS`); command-line
flags override them. The standard grids ship in the package (``imbssl_bench/grids/``;
`packaged_grids`), each led by a comment line ``# NAME: what it runs``.

Example::

    dataset = "digits"
    methods = ["simclr", "simsiam"]
    variants = ["base", "sam"]
    ratios = [1, 10, 100]
    seeds = [0, 1, 2]
    same_size = true

    [method_args]           # options of the grid's methods (each to those that have it)
    temperature = 0.2

    [variant_args]          # options of the grid's variants, e.g. for variants = ["base", "sam"]
    sam_rho = 0.05
"""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imbssl_bench.errors import UserError
from imbssl_bench.running.options import BY_NAME, build_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# keys of earlier versions -> what to write instead
REPLACED = {
    "expert_epochs": "expert_steps = N under [variant_args] (SGD steps of each expert; "
    "default: the base's steps / the experts)",
}


def packaged_grids() -> dict[str, Traversable]:
    """The standard grid files shipped in the package, by name (the file name without .toml)."""
    found = (files("imbssl_bench") / "grids").iterdir()
    grids = {f.name.removesuffix(".toml"): f for f in found if f.name.endswith(".toml")}
    return dict(sorted(grids.items()))


def grid_description(name: str, text: str) -> str:
    """The grid file's first comment line, without ``# NAME:``."""
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip().removeprefix(f"{name}:").strip()
    return ""


def find_grid(config: str | Path) -> Path | Traversable:
    """The grid file `config` names: a path when one exists there, else a packaged grid."""
    if Path(config).exists():
        return Path(config)
    grids = packaged_grids()
    if str(config) in grids:
        return grids[str(config)]
    raise UserError(
        f"grid file '{config}' does not exist and is not a packaged grid "
        f"({', '.join(grids)}; `imbssl-bench grids` describes them)"
    )


def load_grid_file(path: Path | Traversable) -> dict[str, Any]:
    """The file's keys, checked against `GridSpec`; every mistake names the file and key."""
    try:
        values = tomllib.loads((Path(path) if isinstance(path, str) else path).read_text())
    except FileNotFoundError:
        raise UserError(f"grid file '{path}' does not exist; see `imbssl-bench grids`") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"grid file '{path}' is not valid TOML ({exc}); fix it") from None
    for key, value in values.items():
        problem = _key_problem(key, value)
        if problem:
            raise UserError(f"grid file '{path}': {problem}")
    return values


def _key_problem(key: str, value: Any) -> str | None:
    """What is wrong with one top-level key of a grid file, or None."""
    if key in REPLACED:
        return f"'{key}' is gone; write {REPLACED[key]}"
    if key not in BY_NAME:
        owner = option_owner(key)
        if owner:
            table, line = f"{owner.split()[0]}_args", f"{key} = {json.dumps(value)}"
            return f"'{key}' is an option of {owner}: write it under [{table}] ({line})"
        return f"unknown key '{key}'; valid keys: {', '.join(BY_NAME)}"
    return BY_NAME[key].file_type_error(value)


def option_owner(key: str) -> str | None:
    """``variant NAME[ / NAME...]`` (or ``method ...``) when registered plugins take option
    `key`: the variants first, as option names of methods and variants rarely clash."""
    import dataclasses

    from imbssl_bench.methods import list_methods
    from imbssl_bench.variants import list_variants, variant_options

    variants = [i.name for i in list_variants() if i.obj and key in variant_options(i.obj)]
    if variants:
        return f"variant {' / '.join(variants)}"
    methods = [
        i.name
        for i in list_methods()
        if i.obj and key in {f.name for f in dataclasses.fields(i.obj.Args)}
    ]
    return f"method {' / '.join(methods)}" if methods else None


__all__ = [
    "build_spec",
    "find_grid",
    "grid_description",
    "load_grid_file",
    "option_owner",
    "packaged_grids",
]
