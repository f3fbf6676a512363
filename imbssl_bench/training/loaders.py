"""Training data: the subset's images become the method's views, in seeded batches (PIL
transforms in DataLoader workers, or batched views made on the training device)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler

from imbssl_bench.config import RunConfig
from imbssl_bench.data import ImageSplit, Split
from imbssl_bench.errors import UserError
from imbssl_bench.training.draws import (
    KEYED,
    KeyedBatches,
    SamplerWeights,
    draw_seed,
    keyed_draws,
)
from imbssl_bench.training.image_views import EpochParams, ImageViews

if TYPE_CHECKING:
    from imbssl_bench.training.augment import BatchedViews


class ViewsDataset(Dataset):
    """Applies a multi-view transform to each image of a split, as PIL (Lightly's transforms
    take PIL; their tensor path is slower on CPU): images in memory are wrapped without a
    copy, files are decoded in the DataLoader worker that reads them (`Split.reader`).
    `keyed` ``(seed, stage)``: items are ``(epoch, image)`` keys (`KeyedBatches`) and each
    image's views are drawn from (seed, stage, epoch, image), in any worker; keys
    ``(epoch, image, position, number)`` add the draw's position to that key (sampler
    weights) and give `transform` the image's number as a second argument (an `ImageViews`
    hook's `views`)."""

    def __init__(
        self,
        split: Split,
        transform: Callable[[Image.Image], Sequence[Tensor]],
        keyed: tuple[int, str] | None = None,
    ):
        self.read = split.reader()
        self.targets = split.targets
        self.transform = transform
        self.keyed = keyed

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key: int | tuple) -> tuple[Sequence[Tensor], Tensor, int]:
        """The views, the label, and the index (for per-image data such as cluster ids)."""
        if self.keyed is None or isinstance(key, int):
            i = int(key)  # type: ignore[arg-type]
            return self.transform(self.read(i)), self.targets[i], i
        epoch, i, *extra = key
        position, number = extra if extra else (None, None)
        seed = draw_seed(*self.keyed, epoch, i, *(() if position is None else (position,)))
        with keyed_draws(seed):
            image = self.read(i)
            args = (image,) if number is None else (image, number)
            return self.transform(*args), self.targets[i], i


def global_batch_size(cfg: RunConfig, split: Split) -> int:
    """The global batch: the config's, capped by the subset size."""
    batch = min(cfg.train.batch_size, len(split))
    if batch < 2 * cfg.world_size:
        raise ValueError(f"cannot train on {len(split)} image(s): batch norm needs at least 2")
    return batch


def _device_batch(cfg: RunConfig, split: Split) -> int:
    """Each training process's share of the global batch (DDP keeps the experiment's batch)."""
    return global_batch_size(cfg, split) // cfg.world_size


class _Batches(Dataset):
    """Whole batches by one indexing op: ``dataset[indices]`` -> images, labels, indices."""

    def __init__(self, images: Tensor, targets: Tensor) -> None:
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, indices: list[Any]) -> tuple[Tensor, ...]:
        """`indices`: images, or ``(epoch, image)`` keys (`KeyedBatches`); with sampler
        weights, keys that hold each draw's position: the first one's comes back too."""
        first = indices[0]
        position = first[2] if isinstance(first, tuple) and len(first) > 2 else None
        indices = [i if isinstance(i, int) else i[1] for i in indices]
        idx = torch.as_tensor(indices, device=self.images.device)
        batch = (self.images[idx], self.targets[idx.cpu()], idx.cpu())
        return batch if position is None else (*batch, torch.tensor(position))


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

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    @property
    def sampler(self) -> _RankShare:
        """Where Lightning sets the epoch (`set_epoch`) of a batch sampler's epochs."""
        return self


def keyed_sizes(n: int, batch: int, world: int, drop_last: bool) -> list[int]:
    """The global batch sizes of an epoch of `n` images: `batch` each, the rest dropped
    (`drop_last`), or `EvenBatches`'s."""
    if drop_last:
        return [batch] * (n // batch)
    return [u * world for u in _even_units(n, batch, world)]


class DeviceViewsData(pl.LightningDataModule):
    """uint8 batches (on the GPU when the images fit, else pinned) that become the method's
    views on the training device, per image, after the transfer (`BatchedViews`). `batch` is
    the global batch; under DDP each process takes its slice of it (`_RankShare`).
    ``drop_last=False``: `EvenBatches` of at most `batch`, every image in every epoch (all but
    ``n % processes`` under DDP)."""

    def __init__(
        self,
        split: ImageSplit,
        views: BatchedViews,
        batch: int,
        seed: int,
        drop_last: bool = True,
        keyed: tuple[str, int] | None = None,
        weights: SamplerWeights | None = None,
        epochs: int | None = None,
    ) -> None:
        super().__init__()
        self.weights = weights  # keyed draws: drawn with replacement by these (`KeyedBatches`)
        self.epochs = epochs  # the stage's: with weights, no draws past them (`KeyedBatches`)
        self.split, self.views, self.batch, self.seed = split, views, batch, seed
        self.drop_last = drop_last
        self.keyed = keyed  # keyed draws: (stage, first epoch); None: stream draws
        self.generator = torch.Generator().manual_seed(seed)  # stream: its state is saved

    def train_dataloader(self) -> DataLoader:
        images = self.split.images
        if torch.cuda.is_available() and self.trainer is not None:
            device = self.trainer.strategy.root_device
            if device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(device)
                images = images.to(device) if images.nbytes < free // 4 else images.pin_memory()
        world = self.trainer.world_size if self.trainer is not None else 1
        sampler: Sampler[list[Any]]
        if self.keyed is not None:
            stage, epoch = self.keyed
            sizes = keyed_sizes(len(self.split), self.batch, world, self.drop_last)
            last = self.epochs if self.weights is not None else None
            sampler = KeyedBatches(
                len(self.split), sizes, self.seed, stage, epoch, self.weights, epochs=last
            )
        elif self.drop_last:
            sampler = BatchSampler(
                RandomSampler(range(len(self.split)), generator=self.generator),
                self.batch,
                drop_last=True,
            )
        else:
            sampler = EvenBatches(len(self.split), self.batch, self.seed, world)
            sampler.generator = self.generator
        if self.trainer is not None and world > 1:
            sampler = _RankShare(sampler, self.trainer.global_rank, world)
        generator = torch.Generator() if self.keyed is not None else None  # see train_loader
        data = _Batches(images, self.split.targets)
        return DataLoader(data, sampler=sampler, batch_size=None, generator=generator)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, targets, index, *position = batch  # position: sampler weights (`_Batches`)
        self.views.to(images.device)
        if self.keyed is None:
            return self.views(images), targets, index
        trainer = self.trainer
        epoch, rank = (trainer.current_epoch, trainer.global_rank) if trainer else (0, 0)
        key = draw_seed(self.seed, self.keyed[0], epoch, int(index[0]), rank, *map(int, position))
        with keyed_draws(key, images.device):
            return self.views(images), targets, index


def train_data(
    split: Split,
    method: pl.LightningModule,
    cfg: RunConfig,
    image_size: int,
    drop_last: bool = True,
    stage: str = "train",
    epoch: int = 0,
    weights: SamplerWeights | None = None,
    views: ImageViews | None = None,
) -> DataLoader | DeviceViewsData:
    """The PIL `train_loader`, or with ``train.augment == "batched"`` the views made on the
    training device from the same transform's parameters (`drop_last`: see `fit`). Keyed
    draws (``train.draws``) are keyed by `stage`; `epoch` is the first the loader serves;
    `weights`: sampler weights (`KeyedBatches`); `views`: a per-image view hook, whose stage
    makes its views as PIL in DataLoader workers (both need keyed draws)."""
    for given, what in ((weights, "sampler weights"), (views, "a per-image view hook")):
        if given is not None and cfg.train.draws != KEYED:
            raise UserError(f"{what} need keyed draws; run with --draws keyed (the default)")
    if cfg.train.augment in (None, "pil") or views is not None:
        return train_loader(split, method, cfg, image_size, drop_last, stage, epoch, weights, views)
    if cfg.train.augment != "batched":
        raise UserError(f"--augment must be pil or batched, not '{cfg.train.augment}'")
    if not isinstance(split, ImageSplit):
        raise UserError("--augment batched needs the images in memory; pass --augment pil")
    from imbssl_bench.training.augment import Unsupported, batched_views

    try:
        batched = batched_views(method.build_transform(image_size), image_size)
    except Unsupported as exc:  # this run fails, the grid goes on
        raise Unsupported(
            f"--augment batched: the method's transform has {exc}, which has no batched "
            "form here; run it with --augment pil"
        ) from None
    keyed = (stage, epoch) if cfg.train.draws == KEYED else None
    batch = global_batch_size(cfg, split)
    epochs = cfg.train.epochs
    return DeviceViewsData(split, batched, batch, cfg.seed, drop_last, keyed, weights, epochs)


def train_loader(
    split: Split,
    method: pl.LightningModule,
    cfg: RunConfig,
    image_size: int,
    drop_last: bool = True,
    stage: str = "train",
    epoch: int = 0,
    weights: SamplerWeights | None = None,
    views: ImageViews | None = None,
) -> DataLoader:
    """Shuffled batches of `method.build_transform` views: with keyed draws, `KeyedBatches`
    of `stage` from `epoch` on, each process taking its slice of each global batch; with
    stream draws, seeded by the run's seed (`drop_last`: see `fit`)."""
    world = cfg.world_size
    workers = cfg.runtime.num_workers
    common: dict[str, Any] = dict(
        num_workers=workers, persistent_workers=workers > 0, pin_memory=torch.cuda.is_available()
    )
    transform = method.build_transform(image_size) if views is None else views.views
    if cfg.train.draws == KEYED:
        sizes = keyed_sizes(len(split), global_batch_size(cfg, split), world, drop_last)
        hooked = weights is not None or views is not None
        keyed = KeyedBatches(
            len(split),
            sizes,
            cfg.seed,
            stage,
            epoch,
            weights,
            EpochParams(views) if views is not None else None,
            cfg.train.epochs if hooked else None,
        )
        dataset = ViewsDataset(split, transform, keyed=(cfg.seed, stage))
        sampler = keyed if world == 1 else _RankShare(keyed, None, world)
        # its own generator: the loader's base-seed draw leaves the global stream alone
        return DataLoader(dataset, batch_sampler=sampler, generator=torch.Generator(), **common)
    dataset = ViewsDataset(split, transform)
    if not drop_last:  # under DDP each process takes its slice of each batch
        batches = EvenBatches(len(split), global_batch_size(cfg, split), cfg.seed, world)
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


def stream_generators(data: DataLoader | DeviceViewsData) -> list[torch.Generator]:
    """The generators whose states a stage checkpoint keeps under stream draws."""
    if isinstance(data, DeviceViewsData):
        return [data.generator]
    found = [data.generator] if data.generator is not None else []
    batches = getattr(data.batch_sampler, "batches", data.batch_sampler)  # `_RankShare`'s
    if isinstance(batches, EvenBatches):
        found.append(batches.generator)
    return found
