"""Remedies vs their controls in a folder of records, on linear AND kNN top-1 (the leaderboard's
remedies table shows linear only): per ratio and variant, mean ± std over seeds, the passes
spent relative to base, and each remedy minus its `base` and minus the `matched` run planned
to it (`diagnostics.matched.to`), paired by seed.

    python benchmarks/remedy_summary.py benchmarks/records/cifar10-lt-cpu

Markdown on stdout. Standard library only.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

METRICS = ("linear_top1", "knn_top1")


def mean_std(values: list[float], sign: bool = False) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{'+' if sign else ''}.1f} ± {std:.1f}"


def label(r: dict) -> str:
    factor = (r["config"].get("variant_args") or {}).get("matched_factor")
    return f"matched ×{factor:g}" if r["variant"] == "matched" else r["variant"]


def main(folder: Path) -> None:
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    records = [r for r in records if r.get("status") == "ok"]
    by_id = {r["run_id"]: r for r in records}
    base = {(r["ratio"], r["seed"]): r for r in records if r["variant"] == "base"}
    control = {}  # remedy run id -> its matched record
    for r in records:
        for run_id in (r.get("diagnostics") or {}).get("matched", {}).get("to", []):
            control[run_id] = r
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["ratio"], label(r)].append(r)
    print("| ρ | variant | seeds | passes ×base | linear | kNN | Δ base (lin / kNN) "
          "| Δ matched (lin / kNN) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for (ratio, name), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        cells = [
            f"{ratio:g}",
            name,
            ",".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"])),
        ]
        cells.append(f"{statistics.mean(r['compute']['passes_vs_base'] for r in rs):.2f}")
        cells += [mean_std([100 * r["metrics"][m] for r in rs]) for m in METRICS]
        for others in (
            {r["run_id"]: base.get((r["ratio"], r["seed"])) for r in rs if r["variant"] != "base"},
            {r["run_id"]: control.get(r["run_id"]) for r in rs},
        ):
            pairs = [(by_id[i], o) for i, o in others.items() if o is not None]
            cells.append(" / ".join(
                mean_std([100 * (r["metrics"][m] - o["metrics"][m]) for r, o in pairs], sign=True)
                for m in METRICS
            ) if pairs else "–")  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
