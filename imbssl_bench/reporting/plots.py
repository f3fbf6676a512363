"""Accuracy-vs-ratio plots for the leaderboard (PNG, one per table, linked from the markdown),
each stamped with a hash of what it draws (`stamps`)."""

from __future__ import annotations

from pathlib import Path
from statistics import mean, stdev
from typing import Any

from imbssl_bench.files import write_bytes_atomic
from imbssl_bench.reporting.rows import group_rows, group_tables, plot_name, row_label, row_names
from imbssl_bench.reporting.stamps import data_hash, png_metadata

DRAWING = "accuracy-vs-ratio v2"  # bump when the same data is drawn differently


def _series(rows: list[dict[str, Any]], ratios: list[float]) -> dict[str, list[float]]:
    """A row's points: the ratios it has, mean and std over seeds of linear top-1 (%)."""
    xs, ys, es = [], [], []
    for x in ratios:
        vals = [100 * r["metrics"]["linear_top1"] for r in rows if r["ratio"] == x]
        if vals:
            xs.append(x)
            ys.append(round(mean(vals), 6))
            es.append(round(stdev(vals), 6) if len(vals) > 1 else 0.0)
    return {"x": xs, "y": ys, "err": es}


def plot_data(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What each table's plot draws (tables with ratio 1 and a larger ratio), by its file name
    relative to the leaderboard's folder."""
    plots = {}
    for key, table in group_tables(records).items():
        ratios = sorted({r["ratio"] for r in table})
        if ratios[0] != 1 or len(ratios) < 2:
            continue
        grouped = group_rows(table)
        names = row_names(grouped)
        series = [
            {
                "label": row_label(row, names[row]),
                "style": "--" if row[1] in ("supervised", "random") else "-",
                **_series(rows, ratios),
            }
            for row, rows in grouped.items()
        ]
        title = f"{key[1]} · {key[2]} profile"
        plots[plot_name(key)] = {"title": title, "ratios": ratios, "series": series}
    return plots


def plot_stamps(records: list[dict[str, Any]]) -> dict[str, str]:
    """The stamp each table's plot must carry, by file name (see `plot_data`)."""
    return {name: data_hash(DRAWING, data) for name, data in plot_data(records).items()}


def _draw(data: dict[str, Any]) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)  # the legend beside it, not on the data
    for s in data["series"]:
        style = {"marker": "o", "linestyle": s["style"], "capsize": 3, "label": s["label"]}
        ax.errorbar(s["x"], s["y"], yerr=s["err"], **style)
    ratios = data["ratios"]
    ax.set_xscale("log")
    ax.set_xticks(ratios, [f"{x:g}" for x in ratios])
    ax.set_xlabel("imbalance ratio ρ = n_max / n_min")
    ax.set_ylabel("linear-probe top-1 (%), balanced test set")
    ax.set_title(data["title"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    buffer = io.BytesIO()
    metadata = png_metadata(DRAWING, data)
    fig.savefig(buffer, format="png", metadata=metadata, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def write_plots(records: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write each table's plot (tables with ratio 1 and a larger ratio) under `folder`."""
    written = []
    for name, data in plot_data(records).items():
        path = Path(folder) / name
        write_bytes_atomic(path, _draw(data))
        written.append(path)
    return written
