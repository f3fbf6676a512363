"""Pre-training: a Lightning Trainer fits a `Method` on an image subset."""

from __future__ import annotations

import logging
import signal
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger
from torch.utils.data import DataLoader

from imbssl_bench.config import RunConfig
from imbssl_bench.data import Split
from imbssl_bench.errors import UserError
from imbssl_bench.progress import NullReporter, Reporter, ReporterCallback
from imbssl_bench.training.callbacks import (
    FiniteLoss,
    FrozenGradients,
    LogLearningRate,
    RankAugmentation,
    StageStats,
)
from imbssl_bench.training.checkpoints import AtomicCheckpointIO, epoch_checkpoints, resume_point
from imbssl_bench.training.draws import (
    KEYED,
    KeyedSteps,
    SamplerWeights,
    StreamState,
    reseed_after,
)
from imbssl_bench.training.image_views import ImageViews
from imbssl_bench.training.loaders import (
    DeviceViewsData,
    even_batch_size,
    global_batch_size,
    stream_generators,
    train_data,
)
from imbssl_bench.training.logs import RunLogging, check_logger

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)


@dataclass(frozen=True)
class TrainStats:
    epochs: int
    steps: int
    batch_size: int  # effective: capped by the subset size
    final_loss: float | None
    wall_s: float  # of the whole stage: a resumed stage adds the time its checkpoint had
    resumed_from_epoch: int | None = None  # the epochs its checkpoint had finished
    processes: int = 1  # training processes (DDP world size), each with batch_size / processes
    # the code (version@commit) of every process that trained this stage, in order: a stage
    # resumed from a checkpoint written by other code says so ("unknown": before 0.2.0)
    trained_by: tuple[str, ...] = ()
    earlier_wall_s: float = 0.0  # of wall_s: what the processes before this one spent
    # each image's mean loss over its last epoch (NaN: not drawn), when the stage kept them
    image_losses: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def as_record(self) -> dict[str, Any]:
        """The stats as a record's ``train`` section (the per-image losses left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "image_losses"}


@dataclass(frozen=True)
class StageObservers:
    """What watches one training stage: the run's loggers (`RunLogging`, None: no logs) and
    callbacks that observe without changing the training (the online kNN)."""

    stage: str
    logging: RunLogging | None = None
    callbacks: tuple[pl.Callback, ...] = ()

    def loggers(self, resumed_epochs: int) -> list[Logger]:
        return self.logging.loggers(self.stage, resumed_epochs) if self.logging else []


def make_trainer(
    cfg: RunConfig,
    epochs: int,
    callbacks: Sequence[pl.Callback] = (),
    max_steps: int = -1,
    checkpoint_dir: Path | None = None,
    shares_batches: bool = False,
    loggers: Sequence[Logger] = (),
) -> pl.Trainer:
    """A quiet Trainer: no bars (progress goes to a `Reporter`), `loggers` only; with
    `checkpoint_dir`, an atomic ``last.ckpt`` there after every epoch. `shares_batches`: the
    data gives each DDP process its slice of each batch itself (no DistributedSampler)."""
    saving = [epoch_checkpoints(checkpoint_dir)] if checkpoint_dir is not None else []
    return pl.Trainer(
        max_epochs=epochs,
        max_steps=max_steps,
        accelerator=cfg.runtime.accelerator,
        devices=cfg.runtime.devices,
        num_nodes=cfg.runtime.num_nodes,
        strategy=cfg.runtime.strategy,
        sync_batchnorm=cfg.runtime.sync_batchnorm,
        use_distributed_sampler=not shares_batches and cfg.train.augment != "batched",
        precision=cfg.train.precision,  # type: ignore[arg-type]
        logger=list(loggers) or False,
        enable_checkpointing=bool(saving),
        plugins=[AtomicCheckpointIO()] if saving else None,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        callbacks=[RankAugmentation(), FrozenGradients(), *callbacks, *saving],
    )


def check_runtime(cfg: RunConfig, here: bool = True) -> None:
    """Raise a `UserError` now, not inside every run, for settings Lightning rejects.
    ``here=False`` (runs execute elsewhere, e.g. on slurm): skip what depends on this
    machine's hardware."""
    if cfg.train.batch_size % cfg.world_size:
        raise UserError(
            f"--batch-size {cfg.train.batch_size} is the global batch and must divide among "
            f"{cfg.world_size} training processes (--devices x --num-nodes)"
        )
    check_logger(cfg.runtime.logger, here)
    if not here:
        return
    on_cpu = cfg.runtime.accelerator == "cpu" or (
        cfg.runtime.accelerator == "auto" and not torch.cuda.is_available()
    )
    if cfg.runtime.sync_batchnorm and on_cpu:
        raise UserError("--sync-batchnorm needs GPUs (torch's SyncBatchNorm is GPU-only); drop it")
    try:
        make_trainer(cfg, epochs=1)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(
            f"Lightning rejects accelerator '{cfg.runtime.accelerator}' / precision "
            f"'{cfg.train.precision}' / strategy '{cfg.runtime.strategy}' / devices "
            f"{cfg.runtime.devices}: {reason}"
        ) from None


def speed_up(module: pl.LightningModule, cfg: RunConfig) -> None:
    """The config's compute options: channels-last memory format, compiled backbones."""
    if cfg.runtime.channels_last:
        module.to(memory_format=torch.channels_last)
    if cfg.runtime.compile:
        from imbssl_bench.methods import Method

        for method in [m for m in module.modules() if isinstance(m, Method)]:
            method.backbone.compile()  # in place: state_dict keys unchanged


def _run_fit(
    trainer: pl.Trainer,
    method: pl.LightningModule,
    data: DataLoader | DeviceViewsData,
    resume: Path | None,
) -> None:
    """`trainer.fit`, quiet about what is expected here; Ctrl+C is a `KeyboardInterrupt`."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        warnings.filterwarnings("ignore", ".*treespec.*")
        warnings.filterwarnings("ignore", ".*exists and is not empty.*")  # resuming
        warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")  # frozen teachers
        try:
            if isinstance(data, DeviceViewsData):
                trainer.fit(method, datamodule=data, ckpt_path=resume, weights_only=True)
            else:
                trainer.fit(method, data, ckpt_path=resume, weights_only=True)
        except SystemExit:  # Lightning turns Ctrl+C into a graceful shutdown + exit(1)
            if trainer.interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt from None
            raise


def fit(
    method: pl.LightningModule,
    split: Split,
    cfg: RunConfig,
    image_size: int,
    reporter: Reporter | None = None,
    callbacks: Sequence[pl.Callback] = (),
    checkpoint_dir: Path | None = None,
    drop_last: bool = True,
    observers: StageObservers | None = None,
    stage: str | None = None,
    sampler_weights: SamplerWeights | None = None,
    views: ImageViews | None = None,
) -> TrainStats:
    """Train `method` (a `Method`, or any LightningModule with `build_transform(image_size)`,
    such as a variant's wrapper) on `split` for the config's epochs and return stats. With
    `checkpoint_dir`, a ``last.ckpt`` there is resumed and rewritten after every epoch.
    Batches of the config's size capped by the subset's, the last partial one dropped; with
    ``drop_last=False`` every image in every epoch (all but ``n % processes`` under DDP), in
    `EvenBatches` of at most that size (`TrainStats.batch_size`: the largest of them).
    `observers`: the stage's loggers (a resumed stage's logs keep its finished epochs) and
    watching callbacks. `stage` (default: the observers', else ``train``) keys its draws.
    `sampler_weights` (keyed draws): each epoch draws its images with replacement, with
    probability proportional to these weights (one per image, or a function of the epoch).
    `views`: a per-image view hook (`ImageViews`), also one of the stage's callbacks."""
    reporter = reporter or NullReporter()
    epochs = cfg.train.epochs
    observers = observers or StageObservers(stage or "train")
    stage_name = stage or observers.stage
    resume, resumed_from = resume_point(checkpoint_dir, reporter.note)
    first = resumed_from or 0
    data = train_data(
        split, method, cfg, image_size, drop_last, stage_name, first, sampler_weights, views
    )
    callbacks = [*callbacks, *([views] if views is not None else [])]
    speed_up(method, cfg)
    if resumed_from is not None:
        reporter.note(f"resumed from its checkpoint after epoch {resumed_from}/{epochs} ({resume})")
    start = time.perf_counter()
    stage = StageStats(start)
    keyed = cfg.train.draws == KEYED
    draws = KeyedSteps(cfg.seed, stage_name) if keyed else StreamState(stream_generators(data))
    loggers = observers.loggers(resumed_from or 0)
    watching = [*observers.callbacks, *([LogLearningRate()] if loggers else [])]
    trainer = make_trainer(
        cfg,
        epochs,
        [ReporterCallback(reporter), FiniteLoss(), stage, draws, *callbacks, *watching],
        checkpoint_dir=checkpoint_dir,
        shares_batches=keyed or not drop_last,
        loggers=loggers,
    )
    _run_fit(trainer, method, data, resume)
    if trainer.interrupted:  # older Lightning returns from fit after Ctrl+C
        raise KeyboardInterrupt
    if keyed:
        reseed_after(cfg.seed, stage_name)
    elif resumed_from is not None and resumed_from >= epochs:
        draws.restore_finished()  # type: ignore[union-attr]
    loss = trainer.callback_metrics.get("train_loss_epoch")
    final_loss = float(loss) if loss is not None else stage.loss  # None: resumed, finished
    if final_loss is not None and not torch.isfinite(torch.tensor(final_loss)):
        raise FloatingPointError(f"training loss is {final_loss} after {epochs} epochs")
    batch = global_batch_size(cfg, split)
    if not drop_last:
        batch = even_batch_size(len(split), batch, cfg.world_size)  # the largest trained
    return TrainStats(
        epochs,
        int(trainer.global_step),
        batch,
        final_loss,
        round(stage.earlier_wall_s + time.perf_counter() - start, 3),
        resumed_from,
        int(trainer.world_size),
        stage.trained_by(),
        round(stage.earlier_wall_s, 3),
    )
