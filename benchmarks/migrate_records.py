"""Bring existing records to the current run identity: new ids, the same numbers.

A run id hashes the run's identity (`RunConfig.identity`). When the code changes what the
identity holds, records written before keep their old ids, so `imbssl-bench run` no longer
finds them and would train them again. This script migrates them instead: for each record under
--results it applies `FIXUPS` in order (each edits ``record["config"]`` in place), recomputes
``config_hash`` and ``run_id`` with `RunConfig`, writes the record under its new file name
(atomically, beside the old one) and removes the old file. Metrics and every other field are
left as they are. It prints one line per renamed record; records already current are skipped,
so running it twice is harmless. The run's checkpoint folder and kept weights (named by its
run id) are renamed with it.

Fix-ups:
- `content_fingerprint` (0.2.0, issue 14): ``data.fingerprint`` now covers the content of the
  data (image folders: names, sizes and bytes of every image; CIFAR: torchvision's files;
  digits: its arrays). Image-folder records need the tree they were made from: each
  --data-root (repeatable; default: the record's own ``runtime.data_root``) is matched by the
  old fingerprint (class names and per-class counts), so a wrong tree is refused.
- `simsiam_proj_layers` (0.2.0, issue 14): SimSiam's ``proj_layers`` option is new and its
  default is 2 (the SimSiam paper's CIFAR appendix, Liu et al.'s code, Lightly's benchmark);
  records written before it ran Lightly's 3-layer `SimSiamProjectionHead`, so they get
  ``proj_layers = 3``, what they actually ran.
- `base_compute` (0.2.0, issue 15): records gained a ``compute`` section. A `base` record's
  compute is its one training stage, so it is derived from its ``train`` stats exactly as the
  `base` variant computes it today (`random`: zeros). Records of other variants are left
  without one (their stages' split is not in older records): re-run them.

- `add_digest` (0.2.0, issue 19): records carry a ``digest`` of their content, which
  `write_record` computes and ``imbssl-bench leaderboard --validate`` checks. A record without
  one gets the digest of its content as it is now. A record whose digest no longer matches was
  edited after it was written: it is refused, never re-digested.

- The preset out of the identity (0.2.0, issue 29): a preset's name is a label, no longer
  part of the run identity (its backbone, image size and budget are in the config): every
  record gets a new id, its numbers unchanged. No config edit: the identity changed. A
  `matched` record's ``diagnostics.matched.to`` names the runs it matched by id: those ids
  follow the renames (`follow_renames`, after all records of the folder are migrated).
- Records written before keyed draws and before channels-last, compile and the DDP fields
  entered the id keep their ids: `RunConfig.from_dict` reads a missing field as the value
  every earlier record had (`config.LEGACY_VALUES`).

To add a migration, write ``def fix(record, args) -> None`` that edits ``record["config"]``
(or adds a section derived exactly from the record; raising `UserError` when it cannot), and
append it to `FIXUPS`.

Usage:
    python benchmarks/migrate_records.py --results leaderboard/results \\
        [--data-root DIR ...] [--dry-run]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from imbssl_bench.api import stage_compute
from imbssl_bench.api.compute import compute_section
from imbssl_bench.config import RunConfig
from imbssl_bench.data import create_dataset
from imbssl_bench.errors import UserError
from imbssl_bench.running.records import read_record, record_digest, record_files, write_record
from imbssl_bench.training.checkpoints import CHECKPOINTS
from imbssl_bench.training.weights import weights_path

Record = dict[str, Any]


def _legacy_folder_fingerprint(root: str) -> str:
    """The image-folder fingerprint before 0.2.0: class names and per-class file counts."""
    ds = create_dataset("imagefolder", root)
    test_counts = np.bincount(ds.load("streaming").test.targets.numpy()).tolist()
    blob = repr((ds.classes, ds.pool_counts(), test_counts))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def content_fingerprint(record: Record, args: argparse.Namespace) -> None:
    """``data.fingerprint`` from the content of the data the record names."""
    data = record["config"]["data"]
    old, name = data.get("fingerprint"), data["dataset"]
    if name == "imagefolder":
        own = record["config"].get("runtime", {}).get("data_root")
        roots = args.data_root or ([own] if own else [])
        for root in roots:
            new = create_dataset(name, root).fingerprint()
            if old in (new, _legacy_folder_fingerprint(root)):
                data["fingerprint"] = new
                return
        raise UserError(
            f"record '{record['run_id']}': no --data-root holds the image folder it was made "
            f"from (tried {', '.join(roots) or 'none'}); pass that tree with --data-root"
        )
    own = record["config"].get("runtime", {}).get("data_root")
    root = args.data_root[0] if args.data_root else own
    new = create_dataset(name, None if name == "digits" else root).fingerprint()
    if old not in (None, new):
        raise UserError(
            f"record '{record['run_id']}': fingerprint {old} is neither unset nor today's "
            f"{name} ({new}); the data may have changed"
        )
    data["fingerprint"] = new


def simsiam_proj_layers(record: Record, args: argparse.Namespace) -> None:
    """SimSiam records from before ``proj_layers`` existed ran 3 projection layers."""
    config = record["config"]
    if config["method"] == "simsiam":
        config["method_args"].setdefault("proj_layers", 3)


def base_compute(record: Record, args: argparse.Namespace) -> None:
    """A `base` record's ``compute`` from its training stats (what `base` records today)."""
    train = record.get("train")
    if record["variant"] != "base" or record.get("status") != "ok" or "compute" in record:
        return
    if train is None:
        raise UserError(f"record '{record['run_id']}' has no train section to derive compute")
    cfg = RunConfig.from_dict(record["config"])
    batch = cfg.train.batch_size
    spent = stage_compute(SimpleNamespace(**train), batch) if train["steps"] else None
    record["compute"] = compute_section(spent, train, cfg, record["n_train"])


def add_digest(record: Record, args: argparse.Namespace) -> None:
    """A record without a digest gets one (`write_record` computes it when it writes)."""
    record.setdefault("digest", "")


FIXUPS: list[Callable[[Record, argparse.Namespace], None]] = [
    content_fingerprint,
    simsiam_proj_layers,
    base_compute,
    add_digest,
]


def migrate(path: Path, args: argparse.Namespace) -> tuple[str, str] | None:
    """Apply the fix-ups to the record at `path` and rename it; (old id, new id), or None
    when the record is already current."""
    record = read_record(path)
    if "digest" in record and record["digest"] != record_digest(record):
        raise UserError(
            f"record '{path}' does not match its digest: it was edited after it was written; "
            "restore it (git checkout) or re-run it before migrating"
        )
    before = json.dumps(record, sort_keys=True)
    for fix in FIXUPS:
        fix(record, args)
    cfg = RunConfig.from_dict(record["config"])
    old_id, new_id = record["run_id"], cfg.run_id()
    record = {**record, "run_id": new_id, "config_hash": cfg.config_hash()}
    if json.dumps(record, sort_keys=True) == before:
        return None
    target = path.with_name(f"{new_id}.json")
    if target.exists() and target != path:
        raise UserError(f"cannot rename '{path}': '{target}' exists; move one of them away")
    if not args.dry_run:
        write_record(target, record)
        if target != path:
            path.unlink()
            move_run_files(path.parent, old_id, new_id)
    return old_id, new_id


def follow_renames(folder: Path, renames: dict[str, str]) -> int:
    """`matched` records name the runs they matched (``diagnostics.matched.to``): renamed
    runs are named by their new ids. Returns how many records changed."""
    changed = 0
    for path in record_files(folder):
        record = read_record(path)
        matched = (record.get("diagnostics") or {}).get("matched")
        if not matched or not any(run in renames for run in matched.get("to", [])):
            continue
        matched["to"] = sorted(renames.get(run, run) for run in matched["to"])
        write_record(path, record)
        print(f"{record['run_id']}: diagnostics.matched.to follows the renames")
        changed += 1
    return changed


def move_run_files(folder: Path, old_id: str, new_id: str) -> None:
    """The run's epoch checkpoints (a failed run keeps them for --retry-failed) and kept base
    weights follow its new id."""
    for old, new in (
        (folder / CHECKPOINTS / old_id, folder / CHECKPOINTS / new_id),
        (weights_path(folder, old_id), weights_path(folder, new_id)),
    ):
        if old.exists() and not new.exists():
            old.rename(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="folder of records")
    parser.add_argument(
        "--data-root",
        action="append",
        default=[],
        help="data the records were made from (repeatable; default: each record's own)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print, change nothing")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"error: results folder '{args.results}' does not exist", file=sys.stderr)
        return 2
    renamed = updated = 0
    renames: dict[str, str] = {}
    try:
        for path in record_files(args.results):
            change = migrate(path, args)
            if change and change[0] == change[1]:
                updated += 1
                print(f"{change[0]}: updated in place")
            elif change:
                renamed += 1
                renames[change[0]] = change[1]
                print(f"{change[0]} -> {change[1]}")
        if renames and not args.dry_run:
            updated += follow_renames(args.results, renames)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rename, update = ("would rename", "would update") if args.dry_run else ("renamed", "updated")
    print(f"{rename} {renamed} record(s), {update} {updated} in place", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
