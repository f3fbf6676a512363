"""Records -> markdown leaderboard. Generated only; ``--check`` compares with the committed file.

One table per dataset and setup (profile, n_max, backbone, stem, image size, preset); one row
per experiment: the whole run identity (`RunConfig.identity`) but the seed and the ratio, with
what differs between rows in the row's name; one column per imbalance ratio; cells are mean +-
std over seeds of linear-probe and kNN top-1.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from statistics import mean, median, stdev
from typing import Any

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError
from imbssl_bench.records import load_records, record_version

TITLE = "# imbssl-bench leaderboard"


def _table_key(r: dict[str, Any]) -> tuple:
    c = r["config"]
    return (
        r["dataset"],
        r.get("dataset_display") or r["dataset"],
        r.get("profile", ""),
        c["imbalance"]["n_max"],
        c["imbalance"]["class_order"],
        c["imbalance"].get("total"),
        c["data"].get("val_per_class", 0),
        c["eval"].get("probe_per_class"),
        c["model"]["backbone"],
        c["model"]["stem"],
        c["data"]["image_size"],
        c["preset"],
    )


CONTROLS = ("supervised", "random")  # listed after the SSL methods, in this order


def _identity(r: dict[str, Any]) -> dict[str, Any]:
    """The run identity of record `r` without its seed and ratio: what one row shares."""
    d = RunConfig.from_dict(r["config"]).identity()
    del d["seed"], d["imbalance"]["ratio"]
    return d


def _row_key(r: dict[str, Any]) -> tuple:
    t = r["config"]["train"]
    control = CONTROLS.index(r["method"]) + 1 if r["method"] in CONTROLS else 0
    return (
        control,
        r["method"],
        r["variant"] != "base",
        r["variant"],
        t["epochs"],
        t["batch_size"],
        json.dumps(_identity(r), sort_keys=True),
    )


def group_tables(records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Ok records by table (dataset and setup), in a stable order."""
    tables: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["status"] == "ok":
            tables[_table_key(r)].append(r)
    return {k: tables[k] for k in sorted(tables, key=repr)}


def group_rows(records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    rows: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        rows[_row_key(r)].append(r)
    return {k: rows[k] for k in sorted(rows)}


def trained_epochs(row: tuple) -> int:
    """The epochs a row's runs trained: the config's, or a `matched` row's multiple of them."""
    args = json.loads(row[-1]).get("variant_args") or {}
    return args.get("matched_epochs") or row[4] if row[3] == "matched" else row[4]


def row_label(row: tuple, name: str | None = None) -> str:
    """E.g. ``simclr (8 ep x 128)``; `name` (from `row_names`) replaces the method's name."""
    _, method, _, variant, epochs, batch, _ = row
    name = name or method
    name = name if variant == "base" else f"{name}+{variant}"
    return f"{name} ({trained_epochs(row)} ep × {batch})" if epochs else f"{name} (untrained)"


def _epochs_cell(row: tuple) -> str:
    """E.g. ``8 x 128``; a `matched` row's trained epochs with their factor, ``24 x 128 (x3)``."""
    epochs, batch = row[4], row[5]
    if not epochs:
        return "untrained"
    trained = trained_epochs(row)
    return f"{trained} × {batch}" + (f" (×{trained / epochs:.3g})" if row[3] == "matched" else "")


SHOWN_ELSEWHERE = {"method", "variant", "train.epochs", "train.batch_size"}  # own columns
# Fields are compared among rows that share these fields (a method's rows, a variant's rows),
# so a row is named only by what tells it from rows that look alike; data fields across the table.
PEERS = {"method_args": ("method",), "plugins": ("method",), "data": ()}
DEFAULT_PEERS = ("method", "variant")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _differing(flats: dict[tuple, dict[str, Any]]) -> dict[tuple, list[str]]:
    """Per row, the identity fields whose value differs among the row's peers."""
    out: dict[tuple, list[str]] = {row: [] for row in flats}
    for path in sorted({p for f in flats.values() for p in f} - SHOWN_ELSEWHERE):
        by = PEERS.get(path.split(".")[0], DEFAULT_PEERS)
        groups: dict[tuple, list[tuple]] = defaultdict(list)
        for row, flat in flats.items():
            groups[tuple(flat.get(k) for k in by)].append(row)
        for rows in groups.values():
            if len({json.dumps(flats[row].get(path)) for row in rows}) > 1:
                for row in rows:
                    out[row].append(path)
    return out


def _value(v: Any) -> str:
    if v is None:  # unset, or absent from older records
        return "none"
    if isinstance(v, float):
        return f"{v:g}"
    return v if isinstance(v, str) else json.dumps(v)


def _key(path: str, clash: bool) -> str:
    if clash:
        return path
    leaf = path.rsplit(".", 1)[-1]
    return f"{leaf} plugin" if path.startswith("plugins.") else leaf


def row_names(rows: dict[tuple, list[dict[str, Any]]]) -> dict[tuple, str]:
    """Each row's name: the method, then the fields that set it apart from the other rows of
    its table, e.g. ``simclr · temperature=0.2`` (method and variant options by their bare
    name, other fields by the last part of their path, ``lr=0.1``, unless two share it)."""
    flats = {row: _flat(json.loads(row[-1])) for row in rows}
    differing = _differing(flats)
    shown = {p for paths in differing.values() for p in paths}
    leaves = [p.rsplit(".", 1)[-1] for p in shown]
    names = {}
    for row, paths in differing.items():
        parts = [
            f"{_key(p, leaves.count(p.rsplit('.', 1)[-1]) > 1)}={_value(flats[row].get(p))}"
            for p in paths
        ]
        names[row] = f"{row[1]} · {', '.join(parts)}" if parts else row[1]
    return names


def _versions(records: list[dict[str, Any]]) -> list[str]:
    return sorted({record_version(r) for r in records})


def plot_name(key: tuple) -> str:
    """File name of a table's accuracy-vs-ratio plot."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:8]
    return f"plots/{key[0]}-{key[2]}-{digest}.png"


def _paired_gaps(rows: list[dict[str, Any]], lo: float, hi: float, key: str) -> list[float]:
    lo_by_seed = {r["seed"]: r for r in rows if r["ratio"] == lo}
    return [
        100 * (lo_by_seed[r["seed"]]["metrics"][key] - r["metrics"][key])
        for r in rows
        if r["ratio"] == hi and r["seed"] in lo_by_seed
    ]


def _pct(values: list[float]) -> str:
    if not values:
        return "–"
    m = 100 * mean(values)
    return f"{m:.1f} ± {100 * stdev(values):.1f}" if len(values) > 1 else f"{m:.1f}"


def _cell(records: list[dict[str, Any]]) -> str:
    if not records:
        return "–"
    lin = [r["metrics"]["linear_top1"] for r in records]
    knn = [r["metrics"]["knn_top1"] for r in records]
    return f"{_pct(lin)} / {_pct(knn)}"


def _drop(lo: list[dict[str, Any]], hi: list[dict[str, Any]]) -> str:
    """Mean over the seeds present at both ratios of (top-1 at lo - top-1 at hi), in points."""
    lo_by_seed = {r["seed"]: r for r in lo}
    pairs = [(lo_by_seed[r["seed"]], r) for r in hi if r["seed"] in lo_by_seed]
    if not pairs:
        return "–"
    parts = []
    for key in ("linear_top1", "knn_top1"):
        d = 100 * mean(a["metrics"][key] - b["metrics"][key] for a, b in pairs)
        parts.append(f"{d:+.1f}")
    return " / ".join(parts)


def _few(records: list[dict[str, Any]]) -> str:
    vals = [
        r["metrics"]["group_acc"]["few"]
        for r in records
        if r["metrics"]["group_acc"].get("few") is not None
    ]
    return _pct(vals)


def _check_duplicates(records: Iterable[dict[str, Any]]) -> None:
    """Refuse two records of one experiment (identity, ratio and seed): averaging them would
    count that run twice."""
    seen: dict[tuple, dict[str, Any]] = {}
    for r in records:
        key = (_table_key(r), _row_key(r), r["ratio"], r["seed"])
        if key in seen:
            first = seen[key]["run_id"]
            what = (
                f"two records of run '{first}'"
                if first == r["run_id"]
                else f"records '{first}' and '{r['run_id']}'"
            )
            raise UserError(
                f"{what} are the same experiment (same config, ratio and seed); "
                "move one out of the results folder"
            )
        seen[key] = r


def _fmt_ratio(x: float) -> str:
    return f"{x:g}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _hardware(r: dict[str, Any]) -> str:
    env = r.get("env", {})
    if env.get("device") == "cuda" and env.get("gpus"):
        return env["gpus"][0]
    return f"CPU ({env.get('cpu_count', '?')} cores)"


PAPER_EPOCHS = 800  # Liu et al. (2022) and SDCLR pre-train for 800-2000 epochs


def _scale_text(records: list[dict[str, Any]]) -> str:
    """What budget produced the table, and how it compares with the papers' scale."""
    epochs = max((r.get("train") or r["config"]["train"])["epochs"] for r in records)  # trained
    images = max(r["n_train"] for r in records)
    hardware = ", ".join(sorted({_hardware(r) for r in records}))
    text = (
        f"Scale: at most {epochs} pre-training epochs on at most {images:,} images per run, "
        f"on {hardware}."
    )
    if epochs < PAPER_EPOCHS:
        text += (
            " The papers pre-train for 800-2000 epochs on GPUs: this is a small-budget study, "
            "not a reproduction of their numbers."
        )
    return text


def render(records: list[dict[str, Any]]) -> str:
    ok = [r for r in records if r["status"] == "ok"]
    failed = len(records) - len(ok)
    _check_duplicates(ok)
    lines = [
        TITLE,
        "",
        f"Generated by `imbssl-bench leaderboard` from {len(ok)} records; do not edit by hand.",
        "",
    ]
    if failed:
        lines += [f"{failed} failed run(s) are not shown (their records hold the errors).", ""]
    if not ok:
        lines += ["No results yet.", ""]
    for key, table in group_tables(ok).items():
        lines += _render_table(key, table)
    return "\n".join(lines).rstrip() + "\n"


def _render_table(key: tuple, records: list[dict[str, Any]]) -> list[str]:
    _, display, profile, n_max, order, total, val, probe, backbone, stem, size, preset = key
    rows = group_rows(records)
    ratios = sorted({r["ratio"] for r in records})
    lo, hi = ratios[0], ratios[-1]
    order_text = "" if order == "index" else f", class order {order}"
    if total:
        order_text += f", same size: {total} images at every ratio"
    if val:
        order_text += f", {val} images per class held out for validation"
    if probe:
        order_text += f", probes fit on {probe} pool images per class"
    lines = [
        f"## {display} · {profile} profile" + (f" · same size ({total} images)" if total else ""),
        "",
        f"Setup: {backbone} ({stem} stem), {size} px, n_max {n_max}{order_text}, preset "
        f"`{preset}`. Cells: linear-probe / kNN top-1 (%) on the balanced test set, mean ± std "
        f"over seeds. Few: linear accuracy on the rarest third of classes at ρ={_fmt_ratio(hi)}. "
        f"Drop: top-1 at ρ={_fmt_ratio(lo)} minus top-1 at ρ={_fmt_ratio(hi)} "
        "(linear / kNN, points, over the seeds run at both). Time: median wall time per run "
        "(pre-training + evaluation).",
        "",
        _scale_text(records),
        "",
    ]
    header = [
        "method",
        "variant",
        "epochs × batch",
        *[f"ρ={_fmt_ratio(x)}" for x in ratios],
        f"few @ρ={_fmt_ratio(hi)}",
        f"drop {_fmt_ratio(lo)}→{_fmt_ratio(hi)}",
        "seeds",
        "time/run",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = row_names(rows)
    mixed = {row: _versions(rows[row]) for row in rows if len(_versions(rows[row])) > 1}
    for row in rows:
        by_ratio = {x: [r for r in rows[row] if r["ratio"] == x] for x in ratios}
        seeds = sorted({r["seed"] for r in rows[row]})
        cells = [
            names[row] + (" †" if row in mixed else ""),
            row[3],
            _epochs_cell(row),
            *[_cell(by_ratio[x]) for x in ratios],
            _few(by_ratio[hi]),
            _drop(by_ratio[lo], by_ratio[hi]) if lo != hi else "–",
            ",".join(map(str, seeds)),
            _duration(median(r["wall_s"] for r in rows[row])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if mixed:
        which = "; ".join(f"{names[row]} ({', '.join(v)})" for row, v in mixed.items())
        lines += [f"† Records from more than one code version: {which}.", ""]
    lines += _remedy_table(rows, names, ratios)
    if ratios[0] == 1 and len(ratios) > 1:
        lines += _gap_table(rows, names, ratios, same_size=bool(total))
        lines += [f"![linear top-1 vs imbalance ratio]({plot_name(key)})", ""]
    return lines


def _gap_table(
    rows: dict[tuple, list[dict[str, Any]]],
    names: dict[tuple, str],
    ratios: list[float],
    same_size: bool,
) -> list[str]:
    """Robustness gap: linear top-1 at rho=1 minus at each larger rho, paired by seed."""
    caveat = (
        "Every ratio has the same number of images, as in Liu et al. (2022)."
        if same_size
        else "**Caution: the subsets differ in size across ratios, so this gap mixes imbalance "
        "with data size; run the grid with --same-size to separate them.**"
    )
    lines = [
        "Robustness gap: linear top-1 at ρ=1 minus at ρ=r (points), mean ± std over the seeds "
        f"run at both; smaller means more robust to imbalance. {caveat}",
        "",
    ]
    header = ["method", "variant", *[f"gap ρ=1→{_fmt_ratio(x)}" for x in ratios[1:]]]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, records in rows.items():
        if row[4] == 0:
            continue  # an untrained backbone ignores the subset: no gap to report
        gaps = [_pct_points(_paired_gaps(records, 1, x, "linear_top1")) for x in ratios[1:]]
        lines.append("| " + " | ".join([names[row], row[3], *gaps]) + " |")
    return [*lines, ""]


CONTROL_VARIANTS = ("base", "matched")  # every other variant is a remedy
MATCH_TOLERANCE = 0.05  # a control within 5% of a remedy's passes counts as compute-matched


def _pairs(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """Records of `a` and `b` with the same ratio and seed."""
    by_point = {(r["ratio"], r["seed"]): r for r in b}
    return [(r, by_point[r["ratio"], r["seed"]]) for r in a if (r["ratio"], r["seed"]) in by_point]


def _config_key(row: tuple) -> str:
    """A row's run identity without its variant: the rows of one config's variants share it."""
    d = json.loads(row[-1])
    d.pop("variant")
    d.pop("variant_args", None)
    return json.dumps(d, sort_keys=True)


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


def _times(values: list[float]) -> str:
    return f"{mean(values):.2f}" if values else "–"


def _remedy_table(
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
        header += [f"Δ base ρ={_fmt_ratio(x)}", f"Δ matched ρ={_fmt_ratio(x)}"]
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
            _times([v for r in records if (v := _compute(r, "passes_vs_base")) is not None]),
            _times(walls),
            _times([v for _, m in paired if (v := _matched_passes(m)) is not None]),
        ]
        for x in ratios:
            at_x = [r for r in records if r["ratio"] == x]
            cells.append(_pct_points(_diffs(_pairs(at_x, base))))
            at_x_matched = [(r, m) for r, m in paired if r["ratio"] == x]
            off = _furthest_off(at_x_matched)
            cells.append(_pct_points(_diffs(at_x_matched)) + (" ‡" if off else ""))
            if off:
                notes.append(
                    f"‡ compute differs by {off[0]:.0%}: {names[row]} {row[3]} at "
                    f"ρ={_fmt_ratio(x)} ({off[1]:.2f} vs {off[2]:.2f} passes ×base, the "
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


def _pct_points(values: list[float]) -> str:
    if not values:
        return "–"
    m = mean(values)
    return f"{m:+.1f} ± {stdev(values):.1f}" if len(values) > 1 else f"{m:+.1f}"


def plot_links(markdown: str) -> list[str]:
    """The plot files a leaderboard links, relative to its folder."""
    return re.findall(r"\]\((plots/[^)]+\.png)\)", markdown)


def build(results_dir: Path) -> str:
    return render(load_records(results_dir))


def check(results_dir: Path, out: Path) -> str:
    """The unified diff between `out` and what the records give ('' when up to date)."""
    expected = build(results_dir)
    if Path(out).is_dir():
        raise UserError(f"--out '{out}' is a folder; give the markdown file to check")
    if not Path(out).is_file():
        raise UserError(
            f"leaderboard '{out}' does not exist; run `imbssl-bench leaderboard "
            f"--results {results_dir} --out {out}` and commit it"
        )
    actual = Path(out).read_text()
    diff = "".join(
        difflib.unified_diff(
            actual.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile=f"{out} (committed)",
            tofile=f"{out} (from records)",
        )
    )
    missing = [link for link in plot_links(expected) if not (Path(out).parent / link).is_file()]
    return diff + "".join(f"missing plot: {Path(out).parent / link}\n" for link in missing)
