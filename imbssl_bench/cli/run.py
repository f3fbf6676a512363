"""``imbssl-bench run``: a grid of pre-trainings, one record each. Its grid flags are
derived from the option table (`imbssl_bench.running.options.OPTIONS`)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from imbssl_bench.cli.app import app, err, out
from imbssl_bench.errors import UserError
from imbssl_bench.running.options import BY_NAME, GRID, OPTIONS, RUNTIME, GridOption, build_spec


def with_grid_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` (which takes ``**grid``) with one command-line option per grid option of
    `OPTIONS`, after its first parameter: the flags are derived from the table."""
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(fn, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    grid = [
        inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_flag(o))
        for o in OPTIONS
    ]
    fn.__signature__ = inspect.Signature([own[0], *grid, *own[1:]])  # type: ignore[attr-defined]
    return fn


def _flag(option: GridOption) -> Any:
    kind = {list: str, dict: list[str]}.get(option.kind, option.kind)
    default = option.default if option.kind is list else None
    return Annotated[
        kind | None,
        typer.Option(
            *option.cli_names,
            help=escape(option.help + (f" [default: {default}]" if default else "")),
            rich_help_panel=option.panel,
            min=option.minimum,
        ),
    ]


def _opt(help: str, *names: str, panel: str = RUNTIME, **kw: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=panel, **kw)


# the options of `run` that are not grid options: where and how the grid executes
Config = Annotated[
    str | None,
    _opt(
        "A grid file (TOML), or the name of a packaged grid (`imbssl-bench grids`); flags "
        "override its keys.",
        panel=GRID,
    ),
]
Jobs = Annotated[
    int, _opt("Runs at once (local launcher), each in its own process and device set.", min=1)
]
Launcher = Annotated[
    str,
    _opt(
        "local, or slurm (submitit): one job per run, asking for --devices GPUs on each "
        "of --num-nodes nodes."
    ),
]
SlurmPartition = Annotated[str | None, _opt("Slurm partition.")]
SlurmTime = Annotated[int, _opt("Slurm time limit per run (minutes).", min=1)]
SlurmCpus = Annotated[int, _opt("Slurm CPUs per task.", min=1)]
Out = Annotated[Path, _opt("Folder for the records.", "--out")]
DryRun = Annotated[
    bool,
    _opt(
        "Print the planned runs with per-class counts; train nothing.", "--dry-run", panel="Options"
    ),
]
AsJson = Annotated[bool, _opt("Machine-readable output on stdout.", "--json", panel="Options")]
RetryFailed = Annotated[
    bool, _opt("Rerun runs whose record says failed.", "--retry-failed", panel="Options")
]  # fmt: skip


@app.command()
@with_grid_options
def run(
    config: Config = None,
    jobs: Jobs = 1,
    launcher: Launcher = "local",
    slurm_partition: SlurmPartition = None,
    slurm_time: SlurmTime = 240,
    slurm_cpus: SlurmCpus = 8,
    out_dir: Out = Path("runs"),
    dry_run: DryRun = False,
    as_json: AsJson = False,
    retry_failed: RetryFailed = False,
    **grid: Any,
) -> None:
    """Run a grid of pre-trainings (methods x variants x ratios x seeds), one record each.

    Runs whose record already exists in --out are skipped, so rerunning resumes a grid.
    """
    from imbssl_bench.running.fastpath import fills_path, other_path_note, path_note
    from imbssl_bench.running.launchers import LAUNCHERS, SlurmOptions
    from imbssl_bench.running.plan import plan_grid, same_size_note

    if launcher not in LAUNCHERS:
        raise UserError(f"--launcher must be one of {', '.join(LAUNCHERS)}, not '{launcher}'")
    spec = grid_spec(config, grid)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out '{out_dir}' is a file; pass a folder for the records")
    plan = plan_grid(spec, out_dir, here=launcher != "slurm")
    if note := same_size_note(spec, plan):
        err.print(note, highlight=False)
    chosen = fills_path(spec)  # then say which path planning chose, once the run can start
    notes = [path_note([p.config for p in plan]), other_path_note(plan)] if chosen else []
    notes = [n for n in notes if n]
    if dry_run:
        _print_notes(notes)
        _show_plan(plan, as_json)
        return
    slurm = SlurmOptions(slurm_partition, slurm_time, slurm_cpus)
    records = _run_plan(plan, out_dir, retry_failed, jobs, launcher, slurm, notes)
    _show_results(records, as_json)
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        err.print(
            f"[red]{len(failed)} run(s) failed[/]; their records hold the errors "
            "(rerun with --retry-failed)"
        )
        raise typer.Exit(1)


def grid_spec(config: str | None, flags: dict[str, Any]) -> Any:
    """The `GridSpec` of the grid file `config` (a path or a packaged grid's name) overridden
    by the grid options given on the command line (`flags`, None where not given)."""
    from imbssl_bench.running.gridfile import find_grid, load_grid_file

    given = {k: BY_NAME[k].from_cli(v) for k, v in flags.items() if v is not None}
    return build_spec(load_grid_file(find_grid(config)) if config else {}, given)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        err.print(note, highlight=False)


def _run_plan(
    plan: list[Any],
    out_dir: Path,
    retry_failed: bool,
    jobs: int,
    launcher: str,
    slurm: Any,
    notes: list[str],
) -> list[dict[str, Any]]:
    """Run what `plan` lacks with progress on stderr (after `notes`); Ctrl+C exits 130,
    keeping records."""
    from imbssl_bench.cli.console import RichReporter
    from imbssl_bench.running.launchers import run_grid
    from imbssl_bench.running.records import check_writable

    check_writable(out_dir)
    todo = sum(p.status == "todo" or (retry_failed and p.status == "failed") for p in plan)
    err.print(
        f"{len(plan)} runs planned, {len(plan) - todo} already have a record, "
        f"{todo} to run; records go to {out_dir}/"
    )
    _print_notes(notes)
    _warn_other_versions(plan, retry_failed)
    try:
        with RichReporter(err) as reporter:
            return run_grid(plan, reporter, retry_failed, jobs, launcher, slurm)
    except KeyboardInterrupt:
        err.print("interrupted: finished runs have their records; rerun the same command to resume")
        raise typer.Exit(130) from None


def _warn_other_versions(plan: list[Any], retry_failed: bool) -> None:
    """One line when records that this run keeps were written by another package version."""
    from imbssl_bench.running.records import other_versions
    from imbssl_bench.version import __version__

    kept = [p.path for p in plan if p.status == "ok" or (p.status == "failed" and not retry_failed)]
    other = other_versions(kept, __version__)
    if other:
        which = ", ".join(f"{n} by {v}" for v, n in sorted(other.items()))
        folder = plan[0].path.parent
        err.print(
            f"[yellow]{sum(other.values())} of the {len(kept)} skipped records were written by "
            f"another version than {__version__}[/] ({which}); move them out of {folder}/ to "
            "rerun them"
        )


def _variant_text(s: dict[str, Any], variants: dict[str, str]) -> str:
    """The variant of a planned run; `matched` with its factor and the variants it matches
    (`variants`: the plan's run ids to their variant names)."""
    factor = s["variant_args"].get("matched_factor") if s["variant"] == "matched" else None
    if factor is None:
        return s["variant"]
    to = sorted({variants.get(run_id, run_id) for run_id in s["matched_to"]})
    return f"matched ×{factor:g}" + (f" ({', '.join(to)})" if to else "")


def _show_plan(plan: list[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"runs": [p.summary() for p in plan]}, indent=2))
        return
    variants = {p.run_id: p.config.variant for p in plan}
    header = ("method", "variant", "ratio", "seed", "n_train", "status", "class counts")
    rows = [header]
    for p in plan:
        s = p.summary()
        rows.append(
            (
                s["method"],
                _variant_text(s, variants),
                f"{s['ratio']:g}",
                str(s["seed"]),
                str(s["n_train"]),
                s["status"],
                " ".join(map(str, s["class_counts"])),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    print(f"{len(plan)} planned runs (n_train: images in the subset)")
    for row in rows:  # one line each, never wrapped (a pipe is 80 columns to rich)
        print("  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=False)) + "  " + row[-1])


def _show_results(records: list[dict[str, Any]], as_json: bool) -> None:
    rows = []
    for r in records:
        m = r.get("metrics") or {}
        rows.append(
            {
                "run_id": r["run_id"],
                "method": r["method"],
                "variant": r["variant"],
                "ratio": r["ratio"],
                "seed": r["seed"],
                "status": r["status"],
                "linear_top1": m.get("linear_top1"),
                "knn_top1": m.get("knn_top1"),
                "few": (m.get("group_acc") or {}).get("few"),
                "wall_s": r["wall_s"],
                "error": r.get("error"),
            }
        )
    if as_json:
        print(json.dumps({"results": rows}, indent=2))
        return
    table = Table(title="top-1 on the balanced test set")
    for col in ("method", "variant", "ratio", "seed", "status", "linear", "kNN", "few", "s"):
        table.add_column(col)

    def fmt(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    for row in rows:
        table.add_row(
            row["method"],
            row["variant"],
            f"{row['ratio']:g}",
            str(row["seed"]),
            row["status"],
            fmt(row["linear_top1"]),
            fmt(row["knn_top1"]),
            fmt(row["few"]),
            f"{row['wall_s']:.0f}" if row["wall_s"] is not None else "–",
        )
    out.print(table)
