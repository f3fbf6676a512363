"""The out-of-domain tables: each ``--transfer`` target's probe accuracies by row and ratio,
with its own robustness gap (Liu et al. 2022 find SSL's advantage largest out of domain)."""

from __future__ import annotations

from typing import Any

from imbssl_bench.reporting.cells import fmt_ratio, pct, pct_points


def _top1(r: dict[str, Any], key: str, probe: str) -> float:
    return r["metrics"]["transfer"][key][f"{probe}_top1"]


def _has(r: dict[str, Any], key: str) -> bool:
    """Whether `r` has probe results on target `key` (not an error)."""
    return "linear_top1" in (r["metrics"].get("transfer") or {}).get(key, {})


def _gaps(records: list[dict[str, Any]], key: str, hi: float) -> list[float]:
    """Linear top-1 on the target at rho=1 minus at rho=hi, paired by seed, in points."""
    at_one = {r["seed"]: r for r in records if r["ratio"] == 1}
    return [
        100 * (_top1(at_one[r["seed"]], key, "linear") - _top1(r, key, "linear"))
        for r in records
        if r["ratio"] == hi and r["seed"] in at_one
    ]


def transfer_tables(
    rows: dict[tuple, list[dict[str, Any]]], names: dict[tuple, str], ratios: list[float]
) -> list[str]:
    """One table per transfer target found in the rows' records (nothing when none)."""
    found = {k for recs in rows.values() for r in recs for k in r["metrics"].get("transfer") or {}}
    keys = sorted(k for k in found if any(_has(r, k) for recs in rows.values() for r in recs))
    lines: list[str] = []
    hi = ratios[-1]
    with_gap = ratios[0] == 1 and len(ratios) > 1
    for key in keys:
        lines += [
            f"Out of domain: **{key}**. The frozen backbone probed on {key} (probes fit on its "
            "train split, scored on its test split). Cells: linear / kNN top-1 (%), mean ± std "
            "over seeds"
            + (
                f"; gap: linear top-1 on {key} at ρ=1 minus at ρ={fmt_ratio(hi)}, paired by "
                "seed (points)."
                if with_gap
                else "."
            ),
            "",
        ]
        header = ["method", "variant", *[f"ρ={fmt_ratio(x)}" for x in ratios]]
        header += [f"gap ρ=1→{fmt_ratio(hi)}"] if with_gap else []
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row, records in rows.items():
            found = [r for r in records if _has(r, key)]
            if not found:
                continue
            cells = [names[row], row[3]]
            for x in ratios:
                at = [r for r in found if r["ratio"] == x]
                lin = pct([_top1(r, key, "linear") for r in at])
                knn = pct([_top1(r, key, "knn") for r in at])
                cells.append("–" if not at else f"{lin} / {knn}")
            if with_gap:
                cells.append(pct_points(_gaps(found, key, hi)) if row[4] else "–")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines
