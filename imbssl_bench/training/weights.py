"""Trained weights kept between runs of a grid (e.g. a `base` run's weights for the
cluster-distill run of the same config), written atomically and loaded with
``weights_only=True``.

Kept weights belong to the `base` record beside them: the run that keeps them states their
sha256 in its record (``kept_weights``), and other runs start from them only while that
record is there, ``ok``, and names these bytes (`belong_to_record`). A base record deleted to
re-run it after a fix takes its weights' validity with it: the base trains again."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from imbssl_bench.files import write_bytes_atomic

WEIGHTS_DIR = "weights"  # beside the records


def weights_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / WEIGHTS_DIR / f"{run_id}.pt"


def save_weights(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_weights(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def record_of(path: Path) -> Path:
    """The record of the run whose weights are kept at `path` (`weights_path`)."""
    return path.parent.parent / f"{path.stem}.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def kept_weights_section(path: Path) -> dict[str, str]:
    """What the keeping run's record says of its weights: file (relative) and sha256."""
    return {"file": f"{path.parent.name}/{path.name}", "sha256": file_sha256(path)}


def belong_to_record(path: Path) -> bool:
    """Whether the weights at `path` are those the ``ok`` record of their run kept."""
    try:
        record = json.loads(record_of(path).read_text())
        kept = record.get("kept_weights") or {}
        return record.get("status") == "ok" and kept.get("sha256") == file_sha256(path)
    except (OSError, ValueError, AttributeError):
        return False
