"""``imbssl-bench leaderboard``: records to markdown, or a check that it is current."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from imbssl_bench.cli.app import app, err


@app.command()
def leaderboard(
    results: Annotated[Path, typer.Option(help="Folder of records.")] = Path("leaderboard/results"),
    out_file: Annotated[Path, typer.Option("--out", help="Markdown file to write.")] = Path(
        "leaderboard/README.md"
    ),
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 1 with a diff when --out is not what the records give, or a plot it "
            "links is missing or drawn from other numbers; write nothing.",
        ),
    ] = False,
    knn: Annotated[
        str,
        typer.Option(
            "--knn",
            help="kNN cells: final (the final-epoch probe on the whole test set) or best (the "
            "best online kNN over epochs, Lightly's convention; runs without a curve left out).",
        ),
    ] = "final",
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Check every record (schema, digest, run id and class counts vs config, "
            "accuracies in [0, 1], duplicates, matched runs present, plugin versions): one "
            "line per problem naming its file, exit 1 if any; write nothing.",
        ),
    ] = False,
) -> None:
    """Turn records into a markdown leaderboard (or check that it is up to date, or that the
    records are valid)."""
    from imbssl_bench.files import write_text_atomic
    from imbssl_bench.reporting import leaderboard as lb

    if validate:
        _validate(results)
        return
    if check:
        diff = lb.check(results, out_file, knn)
        if diff:
            sys.stdout.write(diff)
            again = "" if knn == "final" else f" --knn {knn}"
            err.print(
                f"[red]{out_file} is stale[/]: regenerate it with `imbssl-bench "
                f"leaderboard --results {results} --out {out_file}{again}` and commit it"
            )
            raise typer.Exit(1)
        err.print(f"{out_file} is up to date with {results}/")
        return
    from imbssl_bench.reporting.curves import write_curve_plots
    from imbssl_bench.reporting.plots import write_plots
    from imbssl_bench.running.records import load_records

    records = load_records(results)
    old = out_file.read_text() if out_file.is_file() else ""
    text = lb.render(records, knn)
    write_text_atomic(out_file, text)
    plots = write_plots(lb.shown(records, knn), out_file.parent)
    plots += write_curve_plots(lb.shown(records, knn), out_file.parent)
    for link in set(lb.plot_links(old)) - set(lb.plot_links(text)):  # tables that are gone
        (out_file.parent / link).unlink(missing_ok=True)
    err.print(f"wrote {out_file}" + (f" and {len(plots)} plot(s)" if plots else ""))


def _validate(results: Path) -> None:
    from imbssl_bench.reporting.validate import validate
    from imbssl_bench.running.records import record_files

    problems = validate(results)
    for problem in problems:
        err.print(f"[red]invalid:[/] {escape(problem)}", highlight=False)
    n = len(record_files(results))
    if problems:
        err.print(f"{len(problems)} problem(s) in the {n} records under {results}/")
        raise typer.Exit(1)
    err.print(f"all {n} records under {results}/ are valid")
