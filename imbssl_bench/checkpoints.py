"""Resumable training stages: Lightning writes ``last.ckpt`` after every epoch, atomically.

Each training stage of a run (``base``, ``expert-3``, ``student``, ...) has its own folder
under ``<out>/checkpoints/<run_id>/``. A rerun of a killed grid finds the stage's ``last.ckpt``
and Lightning resumes from it (loaded with ``weights_only=True``); a finished stage restores
its final state without training again. The grid deletes a run's folder once its record is
written. Resumed training continues the schedule and the data order from the next epoch; it is
not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from imbssl_bench.records import write_bytes_atomic

CHECKPOINTS = "checkpoints"  # beside the records
LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` to memory, then temp file + fsync + rename: never a partial checkpoint."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(Path(path), buffer.getvalue())


def epoch_checkpoints(folder: Path) -> ModelCheckpoint:
    """Keeps only ``folder/last.ckpt``, rewritten at the end of every training epoch."""
    return ModelCheckpoint(
        dirpath=folder,
        filename=LAST.removesuffix(".ckpt"),
        save_top_k=1,  # no monitor: the latest epoch, always at the same path
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )


def resume_path(folder: Path | None) -> Path | None:
    if folder is None:
        return None
    path = Path(folder) / LAST
    return path if path.is_file() else None


def checkpoint_epoch(path: Path) -> int | None:
    """The number of epochs a checkpoint has finished (None if it cannot be read)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except Exception:
        return None
