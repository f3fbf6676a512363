"""The leaderboard's tables and rows: which records share a table (the setup) and a row (the
experiment: the run identity but the seed and the ratio), and the name that tells a row apart."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError

DATA_EXTRAS = (("classes", "classes"), ("split", "split_name"))  # in a table's key when set
ONLINE_KNN = "online_knn"  # a record's monitor schedule in the leaderboard's --knn best view


def table_key(r: dict[str, Any]) -> tuple:
    """What the records of one table share: the dataset and the setup."""
    c = r["config"]
    return (
        r["dataset"],
        r.get("dataset_display") or r["dataset"],
        profile_name(r),
        c["imbalance"]["n_max"],
        c["imbalance"]["class_order"],
        c["imbalance"].get("total"),
        c["data"].get("val_per_class", 0),
        c["eval"].get("probe_per_class"),
        c["model"]["backbone"],
        c["model"]["stem"],
        c["data"]["image_size"],
        *((name, c["data"][field]) for name, field in DATA_EXTRAS if c["data"].get(field)),
        *_online_knn_label(r),
    )


def _online_knn_label(r: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    knn = r.get(ONLINE_KNN)
    if knn is None:
        return ()
    shares = f"{knn['bank']} bank / {knn['test']} test images"
    return (("kNN", f"the best online kNN over epochs ({shares})"),)


def profile_name(r: dict[str, Any]) -> str:
    """The record's profile as tables name it, with the Pareto shape when it has one."""
    shape = r["config"]["imbalance"].get("pareto_shape")
    profile = r.get("profile", "")
    return profile if shape is None else f"{profile} (shape {shape:g})"


CONTROLS = ("supervised", "random")  # listed after the SSL methods, in this order


def _identity(r: dict[str, Any]) -> dict[str, Any]:
    """The run identity of record `r` without its seed and ratio: what one row shares."""
    d = RunConfig.from_dict(r["config"]).identity()
    del d["seed"], d["imbalance"]["ratio"]
    if ONLINE_KNN in r:  # --knn best: runs monitored on other schedules are other rows
        d["online_knn_every"] = r[ONLINE_KNN]["every"]
    return d


def row_key(r: dict[str, Any]) -> tuple:
    """A row's sort key and identity: SSL methods before the controls, base before remedies."""
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
            tables[table_key(r)].append(r)
    return {k: tables[k] for k in sorted(tables, key=repr)}


def group_rows(records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Records by row (`row_key`), in row order."""
    rows: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        rows[row_key(r)].append(r)
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


def epochs_cell(row: tuple, records: Sequence[dict[str, Any]] = ()) -> str:
    """E.g. ``8 x 128``; a `matched` row's trained epochs with their factor, ``24 x 128 (x3)``;
    a remedy's stages as its records state them, ``8 + 8 x 128``, or ``8 + 8 x 128 (+4 on
    parts)`` for stages on parts of the subset (cluster-distill's experts)."""
    epochs, batch = row[4], row[5]
    if not epochs:
        return "untrained"
    stages = {_stages_label(r) for r in records}
    if row[3] not in ("base", "matched") and len(stages) == 1 and None not in stages:
        label, parts = stages.pop()  # type: ignore[misc]  # (None is not among them)
        return f"{label} × {batch}" + (f" (+{parts} on parts)" if parts else "")
    trained = trained_epochs(row)
    return f"{trained} × {batch}" + (f" (×{trained / epochs:.3g})" if row[3] == "matched" else "")


def _stages_label(r: dict[str, Any]) -> tuple[str, int] | None:
    """A record's stages on the whole subset (``8 + 8``) and how many trained on parts of
    it; None for a record that states one stage or none (older records)."""
    stages = (r.get("compute") or {}).get("stages")
    if not stages:
        return None
    whole = [s["epochs"] for s in stages if s["images"] == r["n_train"]]
    return " + ".join(map(str, whole)), len(stages) - len(whole)


SHOWN_ELSEWHERE = {"method", "variant", "train.epochs", "train.batch_size"}  # own columns
# Fields are compared among rows that share these fields (a method's rows, a variant's rows),
# so a row is named only by what tells it from rows that look alike; data fields across the table.
PEERS = {
    "method_args": ("method",),
    "plugins.method": ("method",),
    "plugins.variant": ("method", "variant"),  # a remedy's plugin: told apart from its own kind
    "plugins.backbone": (),
    "data": (),
}
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
        by = _peers(path)
        groups: dict[tuple, list[tuple]] = defaultdict(list)
        for row, flat in flats.items():
            groups[tuple(flat.get(k) for k in by)].append(row)
        for rows in groups.values():
            if len({json.dumps(flats[row].get(path)) for row in rows}) > 1:
                for row in rows:
                    out[row].append(path)
    return out


def _peers(path: str) -> tuple[str, ...]:
    """The fields whose rows `path` is compared among: `PEERS` of its longest prefix."""
    parts = path.split(".")
    prefixes = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
    return next((PEERS[p] for p in prefixes if p in PEERS), DEFAULT_PEERS)


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


def plot_name(key: tuple) -> str:
    """File name of a table's accuracy-vs-ratio plot."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:8]
    profile = key[2].split(" ")[0]  # "pareto (shape 6)": the digest tells shapes apart
    return f"plots/{key[0]}-{profile}-{digest}.png"


def check_duplicates(records: Iterable[dict[str, Any]]) -> None:
    """Refuse two records of one experiment (identity, ratio and seed): averaging them would
    count that run twice."""
    seen: dict[tuple, dict[str, Any]] = {}
    for r in records:
        key = (table_key(r), row_key(r), r["ratio"], r["seed"])
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
