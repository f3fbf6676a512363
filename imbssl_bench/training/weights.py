"""Trained weights kept between runs of a grid (e.g. a `base` run's weights for the
cluster-distill run of the same config), written atomically and loaded with
``weights_only=True``."""

from __future__ import annotations

import io
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
