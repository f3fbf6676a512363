"""Training curves from the records (``metrics.loss_curve``, ``metrics.knn_curve``): one PNG per
leaderboard table (loss and online kNN vs epoch, one line per row and ratio, mean over seeds)
and one per run for ``imbssl-bench show``; each stamped with a hash of what it draws
(`stamps`)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from imbssl_bench.files import write_bytes_atomic
from imbssl_bench.reporting.cells import fmt_ratio
from imbssl_bench.reporting.rows import group_rows, group_tables, plot_name, row_label, row_names
from imbssl_bench.reporting.stamps import data_hash, png_metadata

Curve = list[tuple[float, float]]
CURVES = (("loss_curve", 1.0), ("knn_curve", 100.0))  # the record's key, the scale
DRAWING = "curves v1"  # bump when the same curves are drawn differently


def mean_curve(curves: Sequence[Sequence[Sequence[float]]], scale: float = 1.0) -> Curve:
    """The mean over seeds at the epochs every curve has.

    Examples:
        >>> mean_curve([[[1, 0.5], [2, 0.7]], [[1, 0.3], [2, 0.5], [3, 0.9]]], 100)
        [(1, 40.0), (2, 60.0)]
    """
    shared = set.intersection(*({e for e, _ in c} for c in curves)) if curves else set()
    return [
        (e, round(scale * mean(v for c in curves for x, v in c if x == e), 6))
        for e in sorted(shared)
    ]


def has_curves(records: list[dict[str, Any]]) -> bool:
    return any(r["metrics"].get(metric) for r in records for metric, _ in CURVES)


def curves_name(key: tuple) -> str:
    return plot_name(key).removesuffix(".png") + "-curves.png"


def _figure(lines: dict[str, dict[str, Curve]], groups: dict[str, str], title: str) -> bytes:
    """One loss panel per group (a method and training stage: their losses differ in scale)
    and one kNN panel; `lines`: metric -> label -> curve; `groups`: label -> its panel. A
    label keeps its colour in every panel. The PNG carries the stamp of what it draws."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    losses, knn = lines.get("loss_curve", {}), lines.get("knn_curve", {})
    methods = sorted({groups[label] for label in losses})
    panels = [("loss_curve", m) for m in methods] + ([("knn_curve", None)] if knn else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(max(3.8 * len(panels), 6.4), 3.8), dpi=100,
                             squeeze=False)  # fmt: skip
    palette = plt.get_cmap("tab20").colors
    colours = {label: palette[i % len(palette)] for i, label in enumerate({**losses, **knn})}
    for ax, (metric, method) in zip(axes[0], panels, strict=True):
        for label, curve in lines[metric].items():
            if curve and (method is None or groups[label] == method):
                ax.plot(*zip(*curve, strict=True), color=colours[label], label=label,
                        marker="." if len(curve) < 15 else None)  # fmt: skip
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("online kNN top-1 (%)" if method is None else "training loss (epoch mean)")
        ax.set_title("online kNN (bank / test share)" if method is None else method, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(textwrap.fill(title, 80), fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    metadata = png_metadata(DRAWING, _drawn(lines, groups, title))
    fig.savefig(buffer, format="png", metadata=metadata)
    plt.close(fig)
    return buffer.getvalue()


def _drawn(lines: dict[str, dict[str, Curve]], groups: dict[str, str], title: str) -> dict:
    return {"title": title, "lines": lines, "groups": groups}


def _loss_stage(records: list[dict[str, Any]]) -> str:
    """The training stage whose loss the records' ``loss_curve`` holds (a variant's last)."""
    stages = {r["metrics"].get("loss_stage") for r in records if r["metrics"].get("loss_curve")}
    return "/".join(sorted(s or "?" for s in stages)) or "?"


def curve_data(
    records: list[dict[str, Any]],
) -> dict[str, tuple[dict[str, dict[str, Curve]], dict[str, str], str]]:
    """Each table's curves plot (tables whose records have curves) as `_figure`'s arguments,
    by its file name relative to the leaderboard's folder."""
    plots = {}
    for key, table in group_tables(records).items():
        if not has_curves(table):
            continue
        grouped = group_rows(table)
        names = row_names(grouped)
        lines: dict[str, dict[str, Curve]] = {}
        groups: dict[str, str] = {}
        for row, rows in grouped.items():
            for ratio in sorted({r["ratio"] for r in rows}):
                label = f"{row_label(row, names[row])} ρ={fmt_ratio(ratio)}"
                at = [r for r in rows if r["ratio"] == ratio]
                groups[label] = f"{row[1]} · {_loss_stage(at)}"  # losses of one kind per panel
                for metric, scale in CURVES:
                    curves = [r["metrics"].get(metric) for r in at]
                    curves = [c for c in curves if c]  # records written before curves have none
                    if curves:
                        lines.setdefault(metric, {})[label] = mean_curve(curves, scale)
        title = f"{key[1]} · {key[2]} profile: mean over the seeds that kept curves"
        plots[curves_name(key)] = (lines, groups, title)
    return plots


def curve_stamps(records: list[dict[str, Any]]) -> dict[str, str]:
    """The stamp each table's curves plot must carry, by file name (see `curve_data`)."""
    return {name: data_hash(DRAWING, _drawn(*args)) for name, args in curve_data(records).items()}


def write_curve_plots(records: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Each table's curves plot (tables whose records have curves) under `folder`."""
    written = []
    for name, args in curve_data(records).items():
        path = Path(folder) / name
        write_bytes_atomic(path, _figure(*args))
        written.append(path)
    return written


def write_run_curves(curves: dict[str, dict[str, Curve]], title: str, path: Path) -> Path:
    """One run's curves as a PNG at `path`: `curves` is metric (``loss_curve``, ``knn_curve``
    in %) -> training stage -> curve; one loss panel per stage, the kNN of every stage in one."""
    write_bytes_atomic(
        path, _figure(curves, {stage: stage for c in curves.values() for stage in c}, title)
    )
    return path
