"""The listings: methods, variants (both plugins, listed alike), datasets, grids, presets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from imbssl_bench.cli.app import app, out
from imbssl_bench.cli.plugin_cache import cached_rows


def _defaults(args: Any) -> dict[str, Any]:
    """A plugin's options with their defaults (None: resolved per run), from its default
    ``Args`` instance."""
    import dataclasses

    return dataclasses.asdict(args)


def _plugin_rows(infos: list[Any], extra: Callable[[Any], dict[str, Any]]) -> list[dict]:
    """One JSON row per plugin (`extra`: the kind's own fields of a loaded one)."""
    return [
        {
            "name": i.name,
            "origin": i.origin,
            "version": i.version,
            "description": i.description,
            **(extra(i.obj) if i.obj is not None else {}),
            "error": i.error,
        }
        for i in infos
    ]


def _plugin_table(title: str, rows: list[dict], show_args: bool, columns: dict) -> None:
    """Plugins as a table: name, origin, version, `columns` (header -> row key), description
    (with the options and defaults when `show_args`)."""
    table = Table(title=title)
    for col in ("name", "origin", "version", *columns, "description"):
        table.add_column(col)
    for r in rows:
        text = r["description"] if r["error"] is None else f"[red]failed to load: {r['error']}"
        if show_args and r.get("args"):
            text += "\n" + " ".join(f"{k}={v}" for k, v in r["args"].items())
        cells = ["" if r.get(key) is None else str(r[key]) for key in columns.values()]
        table.add_row(r["name"], r["origin"], r["version"], *cells, text)
    out.print(table)


@app.command()
def methods(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    show_args: Annotated[
        bool, typer.Option("--args", help="Also list each method's options and defaults.")
    ] = False,
) -> None:
    """List the methods found through the `imbssl_bench.methods` entry points."""

    def fresh() -> list[dict]:
        from imbssl_bench.methods import list_methods

        return _plugin_rows(
            list_methods(),
            lambda cls: {
                "per_example_loss": cls.has_per_example_loss(),
                "args": _defaults(cls.make_args()),
            },
        )

    rows = cached_rows("method", fresh)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        flag = r.get("per_example_loss")
        r["per_example"] = None if flag is None else ("yes" if flag else "no")
    title = "methods (per-example loss: the rwsam variants can re-weight it)"
    _plugin_table(title, rows, show_args, {"per-example loss": "per_example"})


@app.command()
def variants(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    show_args: Annotated[
        bool,
        typer.Option("--args", help="Also list each variant's options (--variant-arg key=value)."),
    ] = False,
) -> None:
    """List the variants (remedies and controls around any method's pre-training) found
    through the `imbssl_bench.variants` entry points."""

    def fresh() -> list[dict]:
        from imbssl_bench.variants import list_variants

        return _plugin_rows(
            list_variants(),
            lambda v: {
                "needs_training": v.needs_training,
                "needs_per_example_loss": v.needs_per_example_loss,
                "args": _defaults(v.Args()),
            },
        )

    rows = cached_rows("variant", fresh)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    _plugin_table("variants", rows, show_args, {})


@app.command()
def datasets() -> None:
    """List the datasets and what each needs."""

    def fresh() -> list[dict]:
        from imbssl_bench.data import list_datasets

        return [
            {"name": c.name, "description": c.description, "needs": c.needs}
            for c in list_datasets()
        ]

    table = Table(title="datasets")
    for col in ("name", "description", "needs"):
        table.add_column(col)
    for row in cached_rows("dataset", fresh):
        table.add_row(row["name"], row["description"], row["needs"])
    out.print(table)


@app.command()
def grids(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the standard grid files shipped with the package (`run --config NAME` runs one)."""
    from imbssl_bench.running.gridfile import grid_description, packaged_grids

    rows = [
        {"name": name, "description": grid_description(name, f.read_text()), "file": str(f)}
        for name, f in packaged_grids().items()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['description']}")  # one line each, never wrapped


@app.command()
def presets() -> None:
    """List the presets (backbone, image size and budget per run)."""
    from imbssl_bench.presets import PRESETS

    table = Table(title="presets")
    for col in ("name", "backbone", "stem", "epochs", "batch", "description"):
        table.add_column(col)
    for _, p in PRESETS.items():
        table.add_row(p.name, p.backbone, p.stem, str(p.epochs), str(p.batch_size), p.description)
    out.print(table)
