"""Resumable training stages: Lightning writes ``last.ckpt`` after every epoch, atomically.

Each training stage of a run (``base``, ``expert-3``, ``student``, ...) has its own folder
under ``<out>/checkpoints/<run_id>/``. A rerun of a killed grid finds the stage's ``last.ckpt``
and Lightning resumes from it (loaded with ``weights_only=True``); a finished stage restores
its final state without training again. The grid deletes a run's folder once its ``ok`` record
is written; a failed run keeps it, so that ``--retry-failed`` resumes from the last epoch.
Resumed training continues the schedule, the optimiser and the random draws from the next
epoch (training/draws.py): it trains as an uninterrupted run on the same machine does (bit for
bit on a CPU; a GPU's non-deterministic kernels differ run to run, resumed or not).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from imbssl_bench.files import write_bytes_atomic

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


# What a damaged or foreign file raises when loaded; an I/O error (a flaky network file system)
# is not among them: it fails the run and the checkpoint stays for --retry-failed.
UNREADABLE = (
    pickle.UnpicklingError,
    RuntimeError,
    EOFError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    zipfile.BadZipFile,
)


def checkpoint_epoch(path: Path) -> int | None:
    """The number of epochs a checkpoint has finished (None if it is damaged or foreign)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except UNREADABLE:
        return None


def resume_point(
    folder: Path | None, note: Callable[[str], None]
) -> tuple[Path | None, int | None]:
    """The stage's ``last.ckpt`` and the epochs it finished, or ``(None, None)``. An unreadable
    one is said in one `note` line naming it and set aside as ``last.ckpt.unreadable`` (never
    deleted): the stage trains from the start."""
    path = resume_path(folder)
    if path is None:
        return None, None
    epoch = checkpoint_epoch(path)
    if epoch is None:
        kept = path.with_name(f"{LAST}.unreadable")
        note(
            f"checkpoint {path} is unreadable (kept as {kept.name}): training this stage "
            "from the start"
        )
        with contextlib.suppress(FileNotFoundError):  # every DDP rank sees it
            os.replace(path, kept)
        return None, None
    return path, epoch


def discard(folder: Path, everything: bool) -> None:
    """Delete a run's checkpoint folder (`everything`), or only its empty sub-folders (a
    failed run keeps what it saved)."""
    if everything:
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.is_dir():
        for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                remove_if_empty(sub)
        remove_if_empty(folder)


def remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (another run's), or already gone
        folder.rmdir()
