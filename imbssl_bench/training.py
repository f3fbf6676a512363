"""Pre-training: a Lightning Trainer fits a `Method` on an image subset."""

from __future__ import annotations

import logging
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from imbssl_bench.config import RunConfig
from imbssl_bench.datasets import ImageSplit
from imbssl_bench.errors import UserError
from imbssl_bench.progress import NullReporter, Reporter, ReporterCallback

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)


class ViewsDataset(Dataset):
    """Applies a multi-view transform to images decoded once into memory.

    Lightly's transforms take PIL images (their tensor path is slower on CPU), so the uint8
    tensors are viewed as HWC arrays once and wrapped per item without copying or decoding.
    """

    def __init__(self, split: ImageSplit, transform: Callable[[Image.Image], Sequence[Tensor]]):
        self.hwc = split.images.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = split.targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Sequence[Tensor], Tensor, int]:
        """The views, the label, and the index (for per-image data such as cluster ids)."""
        return self.transform(Image.fromarray(self.hwc[i])), self.targets[i], i


@dataclass(frozen=True)
class TrainStats:
    epochs: int
    steps: int
    batch_size: int  # effective: capped by the subset size
    final_loss: float | None
    wall_s: float


def train_loader(
    split: ImageSplit, method: pl.LightningModule, cfg: RunConfig, image_size: int
) -> DataLoader:
    """Shuffled batches of `method.build_transform` views, seeded by the run's seed."""
    batch = min(cfg.train.batch_size, len(split))
    if batch < 2:
        raise ValueError(f"cannot train on {len(split)} image(s): batch norm needs at least 2")
    workers = cfg.runtime.num_workers
    return DataLoader(
        ViewsDataset(split, method.build_transform(image_size)),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def make_trainer(cfg: RunConfig, epochs: int, callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """A quiet Trainer: no logger, checkpoints or bars (progress goes to a `Reporter`)."""
    return pl.Trainer(
        max_epochs=epochs,
        accelerator=cfg.runtime.accelerator,
        devices=cfg.runtime.devices,
        precision=cfg.train.precision,  # type: ignore[arg-type]
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        callbacks=list(callbacks),
    )


def check_runtime(cfg: RunConfig) -> None:
    """Raise a `UserError` now, not inside every run, for settings Lightning rejects."""
    if cfg.runtime.devices != 1:
        raise UserError(
            "--devices must be 1 for now: multi-device (DDP) runs are not supported "
            "yet; use one device per run"
        )
    try:
        make_trainer(cfg, epochs=1)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(
            f"Lightning rejects accelerator '{cfg.runtime.accelerator}' / precision "
            f"'{cfg.train.precision}': {reason}"
        ) from None


def fit(
    method: pl.LightningModule,
    split: ImageSplit,
    cfg: RunConfig,
    image_size: int,
    reporter: Reporter | None = None,
    callbacks: Sequence[pl.Callback] = (),
) -> TrainStats:
    """Train `method` (a `Method`, or any LightningModule with `build_transform(image_size)`,
    such as a variant's wrapper) on `split` for the config's epochs and return stats."""
    epochs = cfg.train.epochs
    loader = train_loader(split, method, cfg, image_size)
    start = time.perf_counter()
    trainer = make_trainer(cfg, epochs, [ReporterCallback(reporter or NullReporter()), *callbacks])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        warnings.filterwarnings("ignore", ".*treespec.*")
        warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")  # frozen teachers
        try:
            trainer.fit(method, loader)
        except SystemExit:  # Lightning turns Ctrl+C into a graceful shutdown + exit(1)
            if trainer.interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt from None
            raise
    if trainer.interrupted:  # older Lightning returns from fit after Ctrl+C
        raise KeyboardInterrupt
    loss = trainer.callback_metrics.get("train_loss_epoch")
    final_loss = float(loss) if loss is not None else None
    if final_loss is not None and not torch.isfinite(torch.tensor(final_loss)):
        raise FloatingPointError(f"training loss is {final_loss} after {epochs} epochs")
    return TrainStats(
        epochs,
        int(trainer.global_step),
        int(loader.batch_size or 0),
        final_loss,
        round(time.perf_counter() - start, 3),
    )
