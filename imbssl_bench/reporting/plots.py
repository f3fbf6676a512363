"""Accuracy-vs-ratio plots for the leaderboard (PNG, one per table, linked from the markdown)."""

from __future__ import annotations

from pathlib import Path
from statistics import mean, stdev
from typing import Any

from imbssl_bench.files import write_bytes_atomic
from imbssl_bench.reporting.rows import group_rows, group_tables, plot_name, row_label, row_names


def write_plots(records: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write each table's plot (tables with ratio 1 and a larger ratio) under `folder`."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key, table in group_tables(records).items():
        ratios = sorted({r["ratio"] for r in table})
        if ratios[0] != 1 or len(ratios) < 2:
            continue
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        grouped = group_rows(table)
        names = row_names(grouped)
        for row, rows in grouped.items():
            xs, ys, es = [], [], []
            for x in ratios:
                vals = [100 * r["metrics"]["linear_top1"] for r in rows if r["ratio"] == x]
                if vals:
                    xs.append(x)
                    ys.append(mean(vals))
                    es.append(stdev(vals) if len(vals) > 1 else 0.0)
            style = "--" if row[1] in ("supervised", "random") else "-"
            ax.errorbar(
                xs,
                ys,
                yerr=es,
                marker="o",
                linestyle=style,
                capsize=3,
                label=row_label(row, names[row]),
            )
        ax.set_xscale("log")
        ax.set_xticks(ratios, [f"{x:g}" for x in ratios])
        ax.set_xlabel("imbalance ratio ρ = n_max / n_min")
        ax.set_ylabel("linear-probe top-1 (%), balanced test set")
        ax.set_title(f"{key[1]} · {key[2]} profile", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(fig)
        path = Path(folder) / plot_name(key)
        write_bytes_atomic(path, buffer.getvalue())
        written.append(path)
    return written
