"""Grid files: a TOML table of `GridSpec` fields; command-line flags override them. The
standard grids ship in the package (``imbssl_bench/grids/``; `packaged_grids`), each led by a
comment line ``# NAME: what it runs``.

Example (the packaged ``tiny``)::

    dataset = "digits"
    methods = ["simclr", "simsiam", "supervised", "random"]
    ratios = [1, 10, 100]
    seeds = [0, 1, 2]
    same_size = true

    [method_args]           # hyperparameters of the grid's methods (each to those that have it)
    temperature = 0.2
"""

from __future__ import annotations

import dataclasses
import sys
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imbssl_bench.errors import UserError
from imbssl_bench.grid import GridSpec
from imbssl_bench.parsing import parse_names, parse_ratios, parse_seeds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# the same floors the command-line options enforce, for values from grid files too
MINIMUM = {
    "epochs": 1,
    "batch_size": 2,
    "image_size": 8,
    "n_max": 1,
    "total": 1,
    "val_per_class": 1,
    "probe_per_class": 1,
    "clusters": 1,
    "expert_steps": 1,
    "min_cluster_size": 2,
    "student_epochs": 1,
    "rwsam_warmup": 0,
    "rwsam_refresh": 1,
    "rwsam_k": 1,
    "devices": 1,
    "num_nodes": 1,
    "num_workers": 0,
}
# keys of earlier versions -> what to write instead
REPLACED = {
    "expert_epochs": "expert_steps = N (SGD steps of each expert; default: the base's steps / "
    "the experts)",
}
DEFAULTS: dict[str, Any] = {"ratios": "1,10,100", "seeds": "0", "variants": "base"}
_TYPES: dict[str, tuple[type, ...]] = {  # GridSpec annotations -> TOML value types
    "int | None": (int,),
    "float | None": (int, float),
    "str | None": (str,),
    "str": (str,),
    "bool": (bool,),
    "bool | None": (bool,),
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
    fields = {f.name: f for f in dataclasses.fields(GridSpec)}
    for key, value in values.items():
        if key in REPLACED:
            raise UserError(f"grid file '{path}': '{key}' is gone; write {REPLACED[key]}")
        if key not in fields:
            raise UserError(
                f"grid file '{path}': unknown key '{key}'; valid keys: {', '.join(fields)}"
            )
        if key == "method_args":
            if not isinstance(value, dict):
                raise UserError(f"grid file '{path}': 'method_args' must be a table [method_args]")
            continue
        if key in ("methods", "variants", "ratios", "seeds"):
            if not isinstance(value, list) or not value:
                raise UserError(f"grid file '{path}': '{key}' must be a non-empty list")
            continue
        expected = _TYPES[str(fields[key].type)]
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            raise UserError(
                f"grid file '{path}': '{key}' = {value!r} has the wrong type "
                f"(expected {fields[key].type})"
            )
    return values


def build_spec(file_values: dict[str, Any], flags: dict[str, Any]) -> GridSpec:
    """Merge defaults < grid file < flags (flags: the options given, as the CLI parsed them)."""

    def as_text(value: Any) -> str:
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    merged = {
        **DEFAULTS,
        **{k: as_text(v) if isinstance(v, list) else v for k, v in file_values.items()},
        **flags,
    }
    merged["method_args"] = {**file_values.get("method_args", {}), **flags.get("method_args", {})}
    if "methods" not in merged:
        raise UserError("no method given; pass --method (e.g. simsiam) or a --config grid file")
    merged["methods"] = parse_names(as_text(merged["methods"]), "--method")
    merged["variants"] = parse_names(as_text(merged["variants"]), "--variants")
    merged["ratios"] = parse_ratios(as_text(merged["ratios"]))
    merged["seeds"] = parse_seeds(as_text(merged["seeds"]))
    for key, low in MINIMUM.items():
        if merged.get(key) is not None and merged[key] < low:
            raise UserError(f"{key} = {merged[key]} must be >= {low}")
    if merged.get("lr") is not None:
        merged["lr"] = float(merged["lr"])  # 1 and 1.0 must give one run id
    return GridSpec(**merged)


__all__ = ["build_spec", "find_grid", "grid_description", "load_grid_file", "packaged_grids"]
