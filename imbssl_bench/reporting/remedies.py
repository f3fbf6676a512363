"""The leaderboard's remedies-vs-controls table: each remedy minus its `base` and its
compute-matched `matched` control, with the compute it spent."""

from __future__ import annotations

import json
from typing import Any

from imbssl_bench.config import without_variant
from imbssl_bench.reporting.cells import fmt_ratio, pct_points, times

CONTROL_VARIANTS = ("base", "matched")  # every other variant is a remedy
MATCH_TOLERANCE = 0.05  # a control within 5% of a remedy's passes counts as compute-matched


def _pairs(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """Records of `a` and `b` with the same ratio and seed."""
    by_point = {(r["ratio"], r["seed"]): r for r in b}
    return [(r, by_point[r["ratio"], r["seed"]]) for r in a if (r["ratio"], r["seed"]) in by_point]


def _config_key(row: tuple) -> str:
    """A row's run identity without its variant: the rows of one config's variants share it."""
    return json.dumps(without_variant(json.loads(row[-1])), sort_keys=True)


def _base(rows: dict[tuple, list[dict[str, Any]]], remedy: tuple) -> list[dict[str, Any]]:
    """The records of remedy row `remedy`'s `base` row (none if there is none)."""
    found = [row for row in rows if row[3] == "base" and _config_key(row) == _config_key(remedy)]
    return rows[found[0]] if found else []


def _matched_of(rows: dict[tuple, list[dict[str, Any]]], remedy: tuple) -> list[dict[str, Any]]:
    """The records of every `matched` row of remedy row `remedy`'s config."""
    key = _config_key(remedy)
    return [r for row in rows if row[3] == "matched" and _config_key(row) == key for r in rows[row]]


def _matched_passes(m: dict[str, Any]) -> float | None:
    """A `matched` record's passes relative to base: its compute, else its trained epochs
    over the config's (records without a compute section)."""
    passes = _compute(m, "passes_vs_base")
    epochs = m["config"]["train"]["epochs"]
    trained = (m["config"].get("variant_args") or {}).get("matched_epochs")
    return passes if passes is not None else (trained / epochs if trained and epochs else None)


def _off(passes: float | None, control: float | None) -> float | None:
    """How far `passes` is from `control`'s, relative (None when either is unknown)."""
    return abs(passes / control - 1) if passes is not None and control else None


def _paired_matched(r: dict[str, Any], matched: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The control of remedy record `r`: the `matched` record of its ratio and seed planned
    to its run id; else one with a given factor (no `to`) whose passes are within
    `MATCH_TOLERANCE` of `r`'s recorded passes. None when none or several fit."""
    point = [m for m in matched if (m["ratio"], m["seed"]) == (r["ratio"], r["seed"])]
    to = [m for m in point if r["run_id"] in _matched_to(m)]
    if not to:
        passes = _compute(r, "passes_vs_base")
        to = [
            m
            for m in point
            if not _matched_to(m)
            and (off := _off(passes, _matched_passes(m))) is not None
            and off <= MATCH_TOLERANCE
        ]
    return to[0] if len(to) == 1 else None


def _matched_to(m: dict[str, Any]) -> list[str]:
    return (m.get("diagnostics") or {}).get("matched", {}).get("to", [])


def _compute(r: dict[str, Any], key: str) -> float | None:
    return (r.get("compute") or {}).get(key)  # records before issue 15 have no compute


def remedy_table(
    rows: dict[tuple, list[dict[str, Any]]], names: dict[tuple, str], ratios: list[float]
) -> list[str]:
    """Each remedy's linear top-1 minus its `base` and its compute-matched control, per ratio,
    paired by seed, with the compute it spent relative to base; a ‡ footnote where the
    control's passes differ from the remedy's by more than `MATCH_TOLERANCE`."""
    remedies = [row for row in rows if row[3] not in CONTROL_VARIANTS and row[4]]
    if not remedies:
        return []
    lines = [
        "Remedies vs controls: linear top-1 of each remedy minus that of `base` and of "
        "`matched` (plain base trained for as many forward-backward passes as the costliest "
        "remedy of its grid point: the runs it was planned to, or with a given factor within "
        f"{MATCH_TOLERANCE:.0%} of the remedy's passes) of the same config, in points, mean ± "
        "std over the seeds run by both. Passes ×base: forward-backward passes relative to the "
        "planned base run, from the records; wall ×base: pre-training wall time over that of "
        "the base record of the same ratio and seed. –: nothing to pair.",
        "",
    ]
    header = ["method", "variant", "passes ×base", "wall ×base", "matched passes ×base"]
    for x in ratios:
        header += [f"Δ base ρ={fmt_ratio(x)}", f"Δ matched ρ={fmt_ratio(x)}"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = []
    for row in remedies:
        records, base, matched = rows[row], _base(rows, row), _matched_of(rows, row)
        paired = [(r, m) for r in records if (m := _paired_matched(r, matched)) is not None]
        walls = [
            _compute(r, "wall_s") / _compute(b, "wall_s")
            for r, b in _pairs(records, base)
            if _compute(r, "wall_s") is not None and _compute(b, "wall_s")
        ]
        cells = [
            names[row],
            row[3],
            times([v for r in records if (v := _compute(r, "passes_vs_base")) is not None]),
            times(walls),
            times([v for _, m in paired if (v := _matched_passes(m)) is not None]),
        ]
        for x in ratios:
            at_x = [r for r in records if r["ratio"] == x]
            cells.append(pct_points(_diffs(_pairs(at_x, base))))
            at_x_matched = [(r, m) for r, m in paired if r["ratio"] == x]
            off = _furthest_off(at_x_matched)
            cells.append(pct_points(_diffs(at_x_matched)) + (" ‡" if off else ""))
            if off:
                notes.append(
                    f"‡ compute differs by {off[0]:.0%}: {names[row]} {row[3]} at "
                    f"ρ={fmt_ratio(x)} ({off[1]:.2f} vs {off[2]:.2f} passes ×base, the "
                    "furthest seed); this control is not exactly compute-matched."
                )
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, "", *notes, *([""] if notes else [])]


def _diffs(pairs: list[tuple[dict, dict]]) -> list[float]:
    """Linear top-1 of each pair's first record minus its second's, in points."""
    return [100 * (r["metrics"]["linear_top1"] - c["metrics"]["linear_top1"]) for r, c in pairs]


def _furthest_off(pairs: list[tuple[dict, dict]]) -> tuple[float, float, float] | None:
    """The pair (remedy, `matched`) whose passes differ most, beyond `MATCH_TOLERANCE`, as
    (relative difference, remedy's passes, control's); None when all are within it (or
    unknown)."""
    offs = []
    for r, m in pairs:
        passes, control = _compute(r, "passes_vs_base"), _matched_passes(m)
        off = _off(passes, control)
        if off is not None and off > MATCH_TOLERANCE:
            offs.append((off, passes, control))
    return max(offs, default=None)
