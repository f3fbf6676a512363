"""``imbssl-bench show``: the runs of a results folder, one line each, and their curves as PNGs;
with ``--run``, one run's summary. Reads records and training logs only (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from imbssl_bench.cli.app import app, err


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _last(view: Any, metric: str, fmt: str) -> str:
    point = view.last(metric)
    return "" if point is None else f"{point[2]:{fmt}} @{point[1]:g}"


def _run_lines(views: list[Any]) -> list[str]:
    """One line per run, never wrapped: status, final-epoch probes, the curves' last points."""
    width = max(len(v.run_id) for v in views)
    lines = []
    for v in views:
        m = (v.record or {}).get("metrics") or {}
        cells = [
            ("linear", _pct(m.get("linear_top1"))),
            ("kNN", _pct(m.get("knn_top1"))),
            ("best online kNN", _pct(m.get("knn_top1_best"))),
            ("loss", _last(v, "loss_curve", ".4f")),
            ("online kNN", _last(v, "knn_curve", ".1f")),
        ]
        shown = "  ".join(f"{name} {value}" for name, value in cells if value)
        lines.append(f"{v.run_id:<{width}}  {v.status}  {shown}".rstrip())
    return lines


def _summary(view: Any) -> list[str]:
    """One run's summary lines: its setting, metrics, compute and curves."""
    lines = [f"run {view.run_id}: {view.status}"]
    r = view.record
    if r:
        c = r["config"]
        lines.append(
            f"{r['method']} + {r['variant']}, {r['dataset_display']}, {r['profile']} profile, "
            f"ratio {r['ratio']:g}, seed {r['seed']}, {r['n_train']} images; "
            f"{c['model']['backbone']}, {c['train']['epochs']} epochs x batch "
            f"{c['train']['batch_size']}"
        )
        m = r.get("metrics") or {}
        names = (("linear", "linear_top1"), ("kNN", "knn_top1"), ("few-shot", "fewshot_top1"))
        probes = [f"{n} {_pct(m[k])}" for n, k in names if m.get(k) is not None]
        if m.get("knn_top1_best") is not None:
            probes.append(f"best online kNN {_pct(m['knn_top1_best'])}")
        lines.append("top-1 (%): " + (", ".join(probes) or "none (the run failed)"))
        lines += _compute_line(r)
        if r["status"] != "ok":
            lines.append(f"error: {r['error']}")
    for metric, label in (("loss_curve", "loss"), ("knn_curve", "online kNN (%)")):
        for stage, curve in view.curves.get(metric, {}).items():
            points = ", ".join(f"{e:g}: {v:.4g}" for e, v in curve)
            lines.append(f"{label}, stage {stage}, by epoch: {points}")
    return lines


def _compute_line(r: dict[str, Any]) -> list[str]:
    """What the run's result cost (all its stages, a reused base's included) and what this
    run's processes took: not the same when the base was reused."""
    compute = r.get("compute") or {}
    if compute.get("passes_vs_base") is None:
        return []
    reused = [s["stage"] for s in compute.get("stages", []) if s.get("reused")]
    note = f" (reused: {', '.join(reused)})" if reused else ""
    return [
        f"compute: {compute['passes']:g} forward-backward passes "
        f"({compute['passes_vs_base']:.2f}x base), {compute['wall_s']:.0f} s of training"
        f"{note}; this run took {r['wall_s']:.0f} s wall"
    ]


@app.command()
def show(
    results: Annotated[Path, typer.Argument(help="Folder of records (a run's --out).")],
    run: Annotated[
        str | None, typer.Option("--run", help="One run id (or a unique prefix): its summary.")
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="Folder for the curves PNGs [default: RESULTS/curves]."),
    ] = None,
) -> None:
    """The runs of a results folder (finished, failed, or still training) and their curves:
    mean loss and online kNN per epoch, one PNG per run."""
    from imbssl_bench.reporting.curves import write_run_curves
    from imbssl_bench.reporting.show import find_run, run_views

    views = run_views(results)
    if run is not None:
        views = [find_run(views, run, results)]
        print("\n".join(_summary(views[0])), flush=True)
    elif views:
        print("\n".join(_run_lines(views)), flush=True)  # one line each, never wrapped
    folder = plots or Path(results) / "curves"
    drawn = [
        write_run_curves(v.curves, v.run_id, folder / f"{v.run_id}.png") for v in views if v.curves
    ]
    if not views:
        err.print(escape(f"no runs under {results}/ (no records, no training logs)"))
    elif drawn:
        where = drawn[0] if len(drawn) == 1 else f"{folder}/ ({len(drawn)} runs)"
        err.print(escape(f"curves: {where}"), highlight=False)
    else:
        err.print("no curves to draw: these records were written before runs kept curves")
