"""``imbssl-bench leaderboard --validate``: every record of a results folder checked before it
reaches a table, one line per problem, each naming its file.

What it checks: the record schema and required fields (`read_record`), the digest the harness
wrote (a record edited afterwards no longer matches), the run id and config hash against the
config, the fields tables read (method, variant, dataset, ratio, seed, image count) against
the config, the per-class counts against those the config gives (`count_problems`), every
accuracy in [0, 1], a file named by its run id, one record per run id and per experiment, that
a `matched` record's runs (``diagnostics.matched.to``) have records in the folder, and that the
current code could have produced the config: a method or variant that is not built in must
name the plugin version that ran it. It cannot re-run a record. Imports neither torch nor any
training library.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imbssl_bench.config import RunConfig
from imbssl_bench.errors import UserError
from imbssl_bench.profiles import profile_counts
from imbssl_bench.registry import builtin_names
from imbssl_bench.reporting.rows import check_duplicates
from imbssl_bench.running.records import read_record, record_digest, record_files

Record = dict[str, Any]


def validate(results_dir: Path) -> list[str]:
    """The problems of the records under `results_dir`, one line each, naming the file."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results folder '{results_dir}' does not exist; pass --results DIR")
    problems: list[str] = []
    where: dict[str, Path] = {}
    records: dict[Path, Record] = {}
    for path in record_files(results_dir):
        try:
            record = read_record(path)
        except UserError as exc:  # its message names the file
            problems.append(str(exc))
            continue
        problems += [f"{path}: {p}" for p in record_problems(record, path)]
        run_id = record["run_id"]
        if run_id in where:
            problems.append(f"{path}: run '{run_id}' is also recorded in {where[run_id]}; keep one")
            continue
        where[run_id] = path
        records[path] = record
    problems += _matched_problems(records, results_dir)
    try:
        check_duplicates(r for r in records.values() if r["status"] == "ok")
    except UserError as exc:
        problems.append(f"{results_dir}: {exc}")
    return problems


def _matched_problems(records: dict[Path, Record], results_dir: Path) -> list[str]:
    """A `matched` record names the runs it was planned to match (``diagnostics.matched.to``);
    the leaderboard pairs it with them, so their records must be in the same folder."""
    run_ids = {r["run_id"] for r in records.values()}
    problems = []
    for path, record in records.items():
        to = ((record.get("diagnostics") or {}).get("matched") or {}).get("to") or []
        missing = [run_id for run_id in to if run_id not in run_ids]
        if missing:
            problems.append(
                f"{path}: matched to {', '.join(missing)} (diagnostics.matched.to), which has no "
                f"record under {results_dir}; add it, or move this record out too"
            )
    return problems


def record_problems(record: Record, path: Path) -> list[str]:
    """What is wrong with one record that `read_record` accepted."""
    problems = list(_digest_problems(record))
    cfg = RunConfig.from_dict(record["config"])
    if path.stem != record["run_id"]:
        problems.append(f"holds run '{record['run_id']}': rename it {record['run_id']}.json")
    if cfg.run_id() != record["run_id"]:
        problems.append(f"its run id does not match its config (which gives '{cfg.run_id()}')")
    if record.get("config_hash", cfg.config_hash()) != cfg.config_hash():
        problems.append(f"its config_hash does not match its config ('{cfg.config_hash()}')")
    problems += _field_problems(record, cfg)
    problems += _plugin_problems(cfg)
    bad = _accuracies(record)
    return problems + [f"{where} is {value}, outside [0, 1]" for where, value in bad]


def _digest_problems(record: Record) -> Iterator[str]:
    if "digest" not in record:
        yield (
            "has no digest (written by hand, or by a version without digests); re-run it, or "
            "add one with `python benchmarks/migrate_records.py --results DIR`"
        )
    elif record["digest"] != record_digest(record):
        yield (
            "does not match its digest: it was edited after imbssl-bench wrote it; restore "
            "it (git checkout) or re-run that run"
        )


def _field_problems(record: Record, cfg: RunConfig) -> list[str]:
    """The top-level fields that tables read must say what the config says."""
    expected = {
        "method": cfg.method,
        "variant": cfg.variant,
        "dataset": cfg.data.dataset,
        "seed": cfg.seed,
        "ratio": cfg.imbalance.ratio,
    }
    problems = [
        f"says {key} {record[key]!r} but its config says {value!r}"
        for key, value in expected.items()
        if record[key] != value
    ]
    counts = record["class_counts"]
    if not all(isinstance(c, int) and c >= 0 for c in counts):
        problems.append("has class_counts that are not counts")
    elif sum(counts) != record["n_train"]:
        n = record["n_train"]
        problems.append(f"has class_counts summing to {sum(counts)}, not n_train {n}")
    else:
        problems += count_problems(record)
    return problems


def count_problems(record: Record) -> list[str]:
    """The record's class counts against those its config gives, from `profile_counts` as the
    harness plans them (the number of classes: its ``class_names``). Skipped where the config
    alone does not give them: a ``--split-file`` run (``data.split_hash``: the file's counts),
    an unresolved n_max (the pool's smallest class: only the dataset knows it) or a record
    without class names."""
    cfg = RunConfig.from_dict(record["config"])
    imb = cfg.imbalance
    if cfg.data.split_hash or not imb.n_max or not record.get("class_names"):
        return []
    try:
        expected = profile_counts(
            len(record["class_names"]),
            imb.ratio,
            imb.n_max,
            imb.profile,
            imb.class_order,
            cfg.seed,
            imb.total,
            imb.pareto_shape,
        )
    except UserError as exc:
        return [f"has a config that gives no class counts: {exc}"]
    if expected != record["class_counts"]:
        return [f"has class_counts {record['class_counts']} but its config gives {expected}"]
    return []


def _plugin_problems(cfg: RunConfig) -> list[str]:
    """A config names a plugin method or variant only with the plugin's version."""
    problems = []
    for kind, name in (("method", cfg.method), ("variant", cfg.variant)):
        source = cfg.plugins.get(kind)
        if source is None and name not in builtin_names(kind):
            problems.append(
                f"{kind} '{name}' is not built in and the record names no plugin for it "
                f"(config.plugins.{kind}); the current code could not have produced it"
            )
    for kind, source in cfg.plugins.items():
        if not isinstance(source, dict) or not source.get("version"):
            problems.append(f"plugin {kind} has no version (config.plugins.{kind})")
    return problems


def _accuracies(record: Record) -> Iterator[tuple[str, Any]]:
    """(where, value) of every accuracy in the metrics (keys with 'top1' or 'acc') that is
    not a number in [0, 1]; null (a class with no test images) is allowed."""

    def walk(value: Any, where: str, is_acc: bool) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield from walk(item, f"{where}.{key}", is_acc or "top1" in key or "acc" in key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from walk(item, f"{where}[{i}]", is_acc)
        elif is_acc and value is not None:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and 0 <= value <= 1):
                yield where, value

    metrics = record.get("metrics")
    return walk(metrics, "metrics", False) if isinstance(metrics, dict) else iter(())
