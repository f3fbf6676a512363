"""Pre-training: a Lightning Trainer fits a `Method` on an image subset."""

from __future__ import annotations

import logging
import math
import random
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler

from imbssl_bench.config import RunConfig
from imbssl_bench.data import ImageSplit
from imbssl_bench.envinfo import code_label
from imbssl_bench.errors import UserError
from imbssl_bench.methods.base import frozen_parameters_of
from imbssl_bench.progress import LOSS_EVERY, NullReporter, Reporter, ReporterCallback
from imbssl_bench.training.checkpoints import AtomicCheckpointIO, epoch_checkpoints, resume_point

if TYPE_CHECKING:
    from imbssl_bench.training.augment import BatchedViews

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
    wall_s: float  # of the whole stage: a resumed stage adds the time its checkpoint had
    resumed_from_epoch: int | None = None  # the epochs its checkpoint had finished
    processes: int = 1  # training processes (DDP world size), each with batch_size / processes
    # the code (version@commit) of every process that trained this stage, in order: a stage
    # resumed from a checkpoint written by other code says so ("unknown": before 0.2.0)
    trained_by: tuple[str, ...] = ()


def _batch_size(cfg: RunConfig, split: ImageSplit) -> int:
    """The global batch: the config's, capped by the subset size."""
    batch = min(cfg.train.batch_size, len(split))
    if batch < 2 * cfg.world_size:
        raise ValueError(f"cannot train on {len(split)} image(s): batch norm needs at least 2")
    return batch


def _device_batch(cfg: RunConfig, split: ImageSplit) -> int:
    """Each training process's share of the global batch (DDP keeps the experiment's batch)."""
    return _batch_size(cfg, split) // cfg.world_size


class _Batches(Dataset):
    """Whole batches by one indexing op: ``dataset[indices]`` -> images, labels, indices."""

    def __init__(self, images: Tensor, targets: Tensor) -> None:
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, indices: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        idx = torch.as_tensor(indices, device=self.images.device)
        return self.images[idx], self.targets[idx.cpu()], idx.cpu()


def even_batch_count(n: int, batch: int, min_batch: int = 2) -> int:
    """How many batches `EvenBatches` cuts `n` images into: ``ceil(n / batch)``, fewer where
    a batch would get under `min_batch` images (batch norm needs two per process).

    Examples:
        >>> [even_batch_count(n, 128) for n in (2, 3, 128, 129, 257)]
        [1, 1, 1, 2, 3]
        >>> even_batch_count(5, 2)  # 2 + 3, not 2 + 2 + 1
        2
    """
    return max(1, min(math.ceil(n / batch), n // min_batch))


def _even_units(n: int, batch: int, world: int) -> list[int]:
    """`EvenBatches`'s batch sizes in units of `world` images (one per process)."""
    count, units = even_batch_count(n, batch, 2 * world), n // world
    return [units // count + (i < units % count) for i in range(count)]


def even_batch_size(n: int, batch: int, world: int = 1) -> int:
    """The largest batch `EvenBatches` cuts (the global batch: all processes together).

    Examples:
        >>> even_batch_size(10, 4, world=2)  # 6 + 4 (3 + 3 and 2 + 2 per process)
        6
    """
    return max(_even_units(n, batch, world)) * world


class EvenBatches(Sampler[list[int]]):
    """`n` indices per epoch, shuffled (seeded), in `even_batch_count` batches of sizes that
    are multiples of `world` (so that each DDP process gets an equal slice, `_RankShare`) and
    differ by at most `world`: every index but ``n % world`` of them (a different few each
    epoch) once per epoch, none starved by ``drop_last``."""

    def __init__(self, n: int, batch: int, seed: int, world: int = 1) -> None:
        self.n, self.world, self.units = n, world, _even_units(n, batch, world)
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):  # type: ignore[no-untyped-def]
        order = torch.randperm(self.n, generator=self.generator)
        sizes = [u * self.world for u in self.units]
        for part in torch.split(order[: sum(sizes)], sizes):
            yield part.tolist()

    def __len__(self) -> int:
        return len(self.units)


class _RankShare(Sampler[list[int]]):
    """This DDP process's slice of each global batch: the processes together see the global
    batches a single process would, step for step (less a batch's remainder modulo the
    processes: none for `EvenBatches`). `rank` None: read from torch.distributed when iterated."""

    def __init__(self, batches: Sampler[list[int]], rank: int | None, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __iter__(self):  # type: ignore[no-untyped-def]
        rank = torch.distributed.get_rank() if self.rank is None else self.rank
        for batch in self.batches:
            share = len(batch) // self.world
            yield batch[rank * share : (rank + 1) * share]

    def __len__(self) -> int:
        return len(self.batches)


class DeviceViewsData(pl.LightningDataModule):
    """uint8 batches (on the GPU when the images fit, else pinned) that become the method's
    views on the training device, per image, after the transfer (`BatchedViews`). `batch` is
    the global batch; under DDP each process takes its slice of it (`_RankShare`).
    ``drop_last=False``: `EvenBatches` of at most `batch`, every image in every epoch (all but
    ``n % processes`` under DDP)."""

    def __init__(
        self, split: ImageSplit, views: BatchedViews, batch: int, seed: int, drop_last: bool = True
    ) -> None:
        super().__init__()
        self.split, self.views, self.batch, self.seed = split, views, batch, seed
        self.drop_last = drop_last

    def train_dataloader(self) -> DataLoader:
        images = self.split.images
        if torch.cuda.is_available() and self.trainer is not None:
            device = self.trainer.strategy.root_device
            if device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(device)
                images = images.to(device) if images.nbytes < free // 4 else images.pin_memory()
        world = self.trainer.world_size if self.trainer is not None else 1
        sampler: Sampler[list[int]] = (
            BatchSampler(
                RandomSampler(
                    range(len(self.split)), generator=torch.Generator().manual_seed(self.seed)
                ),
                self.batch,
                drop_last=True,
            )
            if self.drop_last
            else EvenBatches(len(self.split), self.batch, self.seed, world)
        )
        if self.trainer is not None and world > 1:
            sampler = _RankShare(sampler, self.trainer.global_rank, world)
        return DataLoader(_Batches(images, self.split.targets), sampler=sampler, batch_size=None)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, targets, index = batch
        self.views.to(images.device)
        return self.views(images), targets, index


def train_data(
    split: ImageSplit,
    method: pl.LightningModule,
    cfg: RunConfig,
    image_size: int,
    drop_last: bool = True,
) -> DataLoader | DeviceViewsData:
    """The PIL `train_loader`, or with ``train.augment == "batched"`` the views made on the
    training device from the same transform's parameters (`drop_last`: see `fit`)."""
    if cfg.train.augment in (None, "pil"):
        return train_loader(split, method, cfg, image_size, drop_last)
    if cfg.train.augment != "batched":
        raise UserError(f"--augment must be pil or batched, not '{cfg.train.augment}'")
    from imbssl_bench.training.augment import Unsupported, batched_views

    try:
        views = batched_views(method.build_transform(image_size), image_size)
    except Unsupported as exc:  # this run fails, the grid goes on
        raise Unsupported(
            f"--augment batched: the method's transform has {exc}, which has no batched "
            "form here; run it with --augment pil"
        ) from None
    return DeviceViewsData(split, views, _batch_size(cfg, split), cfg.seed, drop_last)


def train_loader(
    split: ImageSplit,
    method: pl.LightningModule,
    cfg: RunConfig,
    image_size: int,
    drop_last: bool = True,
) -> DataLoader:
    """Shuffled batches of `method.build_transform` views, seeded by the run's seed
    (`drop_last`: see `fit`)."""
    dataset = ViewsDataset(split, method.build_transform(image_size))
    workers = cfg.runtime.num_workers
    common: dict[str, Any] = dict(
        num_workers=workers, persistent_workers=workers > 0, pin_memory=torch.cuda.is_available()
    )
    if not drop_last:  # under DDP each process takes its slice of each batch
        world = cfg.world_size
        batches = EvenBatches(len(split), _batch_size(cfg, split), cfg.seed, world)
        sampler = batches if world == 1 else _RankShare(batches, None, world)
        return DataLoader(dataset, batch_sampler=sampler, **common)
    return DataLoader(
        dataset,
        batch_size=_device_batch(cfg, split),  # Lightning adds a DistributedSampler under DDP
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(cfg.seed),
        **common,
    )


def make_trainer(
    cfg: RunConfig,
    epochs: int,
    callbacks: Sequence[pl.Callback] = (),
    max_steps: int = -1,
    checkpoint_dir: Path | None = None,
    shares_batches: bool = False,
) -> pl.Trainer:
    """A quiet Trainer: no logger or bars (progress goes to a `Reporter`); with
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
        logger=False,
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


def fit(
    method: pl.LightningModule,
    split: ImageSplit,
    cfg: RunConfig,
    image_size: int,
    reporter: Reporter | None = None,
    callbacks: Sequence[pl.Callback] = (),
    checkpoint_dir: Path | None = None,
    drop_last: bool = True,
) -> TrainStats:
    """Train `method` (a `Method`, or any LightningModule with `build_transform(image_size)`,
    such as a variant's wrapper) on `split` for the config's epochs and return stats. With
    `checkpoint_dir`, a ``last.ckpt`` there is resumed and rewritten after every epoch.
    Batches of the config's size capped by the subset's, the last partial one dropped; with
    ``drop_last=False`` every image in every epoch (all but ``n % processes`` under DDP), in
    `EvenBatches` of at most that size (`TrainStats.batch_size`: the largest of them)."""
    reporter = reporter or NullReporter()
    epochs = cfg.train.epochs
    data = train_data(split, method, cfg, image_size, drop_last)
    speed_up(method, cfg)
    resume, resumed_from = resume_point(checkpoint_dir, reporter.note)
    if resumed_from is not None:
        reporter.note(f"resumed from its checkpoint after epoch {resumed_from}/{epochs} ({resume})")
    start = time.perf_counter()
    stage = StageStats(start)
    trainer = make_trainer(
        cfg,
        epochs,
        [ReporterCallback(reporter), FiniteLoss(), stage, *callbacks],
        checkpoint_dir=checkpoint_dir,
        shares_batches=not drop_last,
    )
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
    if trainer.interrupted:  # older Lightning returns from fit after Ctrl+C
        raise KeyboardInterrupt
    loss = trainer.callback_metrics.get("train_loss_epoch")
    final_loss = float(loss) if loss is not None else stage.loss  # None: resumed, finished
    if final_loss is not None and not torch.isfinite(torch.tensor(final_loss)):
        raise FloatingPointError(f"training loss is {final_loss} after {epochs} epochs")
    batch = _batch_size(cfg, split)
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
    )


class StageStats(pl.Callback):
    """The stage's wall time and last epoch loss, saved in its checkpoints, so that a resumed
    stage reports the time and loss of all its epochs, not only of those it ran itself."""

    def __init__(self, start: float) -> None:
        self.earlier_wall_s = 0.0  # spent before the checkpoint this process resumed from
        self.earlier_code: tuple[str, ...] = ()  # the code that wrote that checkpoint
        self.loss: float | None = None
        self._start = start  # `time.perf_counter()` when this process began the stage

    def trained_by(self) -> tuple[str, ...]:
        mine = code_label()
        return (
            self.earlier_code if self.earlier_code[-1:] == (mine,) else (*self.earlier_code, mine)
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train_loss_epoch")  # one read per epoch
        self.loss = float(loss) if loss is not None else self.loss

    def state_dict(self) -> dict[str, Any]:
        wall = self.earlier_wall_s + time.perf_counter() - self._start
        return {"wall_s": wall, "loss": self.loss, "trained_by": list(self.trained_by())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier_wall_s = float(state_dict["wall_s"])
        self.loss = state_dict["loss"]
        self.earlier_code = tuple(state_dict.get("trained_by", ("unknown",)))


class EpochLosses(pl.Callback):
    """Each epoch's mean training loss (``train_loss_epoch``), kept in the stage's
    checkpoints so that a resumed stage still knows its first epochs'."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train_loss_epoch")
        if loss is not None:
            self.losses.append(float(loss))

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.losses = list(state_dict["losses"])


class RankAugmentation(pl.Callback):
    """Gives each DDP process its own augmentation stream: every process starts from the
    run's seed, so without this the i-th image of each process's batch would get the same
    crop, flip and jitter. At the start of training, processes other than rank 0 reseed
    torch, numpy and `random` from the state they share and their rank; rank 0 (and a single
    process) draws exactly as before. DataLoader workers are seeded per rank by Lightning."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == 0:
            return
        shared = int(torch.randint(2**31, ()))  # the same in every process
        seed = int(np.random.SeedSequence([shared, trainer.global_rank]).generate_state(1)[0])
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)


class FrozenGradients(pl.Callback):
    """Drops the gradients of the methods' `frozen_parameters` before each optimiser step
    (after DDP has averaged them), so those parameters stay as they are."""

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        for p in frozen_parameters_of(pl_module):
            p.grad = None


class FiniteLoss(pl.Callback):
    """Stops training at the first non-finite loss with a `FloatingPointError` that says the
    epoch and step. The check stays on the device; the flag is read every `LOSS_EVERY` steps
    and at the end of each epoch, so the step itself never waits for it."""

    def __init__(self) -> None:
        self.bad_step: Tensor | None = None  # first step with a non-finite loss, -1: none

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor):
            return
        if self.bad_step is None:
            self.bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
        step = trainer.global_step - 1  # the step that just ran (optimizer steps count)
        first = (self.bad_step < 0) & ~torch.isfinite(loss.detach()).all()
        self.bad_step = torch.where(first, torch.full_like(self.bad_step, step), self.bad_step)
        if trainer.global_step % LOSS_EVERY == 0:
            self._check(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        step = -1 if self.bad_step is None else int(self.bad_step)
        # every DDP process checks at the same steps, so all of them stop together
        if not trainer.strategy.reduce_boolean_decision(step >= 0, all=False):
            return
        if step < 0:
            raise FloatingPointError("training loss became nan/inf in another DDP process")
        per_epoch = max(1, int(trainer.num_training_batches))
        raise FloatingPointError(
            f"training loss became nan/inf at epoch {step // per_epoch + 1}/{trainer.max_epochs}, "
            f"step {step + 1} (of {int(trainer.estimated_stepping_batches)}); lower --lr, or "
            "try --precision 32-true"
        )
