"""Random draws of training as a function of the experiment, so that a resume, another worker
count or another process changes no number.

Two schemes (``train.draws``):
- ``keyed`` (the default): every draw is derived from the experiment's position, never from
  a stream whose state depends on what ran before in this process. The batch order of an
  epoch comes from (seed, stage, epoch); each image's views from (seed, stage, epoch, image),
  in whichever DataLoader worker reads it; views made in batches on the device from (seed,
  stage, epoch, the batch's first image, rank); the draws of the training steps (if a method
  makes any) from (seed, stage, epoch, rank); and the work between stages (an expert's
  initial weights, k-means) from (seed, the last stage). `--num-workers` then changes
  nothing, and a run resumed at any epoch trains exactly as an uninterrupted one.
- ``stream``: the scheme of the records written before keyed draws (one generator stream
  per process, seeded at its start; `--num-workers 0` only). It is kept so that those
  records stay reproducible: their stage checkpoints save the streams' states (`StreamState`)
  and a resumed stage continues them, so a resume replays nothing there either.
"""

from __future__ import annotations

import contextlib
import random
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import Sampler

SamplerWeights = torch.Tensor | Callable[[int], torch.Tensor]  # per image, or per epoch

KEYED, STREAM = "keyed", "stream"
DRAWS = (KEYED, STREAM)
END = -1  # the epoch slot of the draws after a stage (`reseed_after`)


def _word(part: int | str) -> int:
    """One key part as a 32-bit word (names by their CRC-32, so a stage name is stable)."""
    if isinstance(part, str):
        return zlib.crc32(part.encode())
    return int(part) % 2**32


def draw_seed(*key: int | str) -> int:
    """A 63-bit seed from a key such as ``(seed, stage, epoch, image)``: numpy's
    SeedSequence hashes the parts, so nearby keys give unrelated streams.

    Examples:
        >>> draw_seed(0, "base", 1, 7) == draw_seed(0, "base", 1, 7)
        True
        >>> draw_seed(0, "base", 1, 7) == draw_seed(0, "base", 2, 7)
        False
    """
    words = np.random.SeedSequence([_word(p) for p in key]).generate_state(2, np.uint64)
    return int(words[0] >> np.uint64(1))


def seed_all(seed: int) -> None:
    """Seed torch (every device), numpy's and Python's global generators."""
    torch.manual_seed(seed)
    _seed_python_and_numpy(seed)


def _seed_python_and_numpy(seed: int) -> None:
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextlib.contextmanager
def keyed_draws(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Inside: the CPU generators (and `device`'s, if a GPU) seeded with `seed`; after: as
    they were. Draws keyed without moving the stream of the code around them."""
    cuda = [device] if device is not None and device.type == "cuda" else []
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for gpu in cuda:
            with torch.cuda.device(gpu):
                torch.cuda.manual_seed(seed)
        _seed_python_and_numpy(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def epoch_order(
    n: int, seed: int, stage: str, epoch: int, weights: SamplerWeights | None = None
) -> torch.Tensor:
    """The order of the `n` images in `epoch` of `stage`: a permutation, or with `weights`
    (one per image, or a function of the epoch giving them) `n` draws with replacement, each
    image with probability proportional to its weight. A function runs under `keyed_draws`
    of (seed, stage, epoch): what it draws is keyed, and the global streams are left as they
    were (when it runs depends on the DataLoader workers and on a resume)."""
    generator = torch.Generator().manual_seed(draw_seed(seed, stage, epoch, "order"))
    if weights is None:
        return torch.randperm(n, generator=generator)
    if callable(weights):
        with keyed_draws(draw_seed(seed, stage, epoch, "sampler")):
            weights = weights(epoch)
    w = torch.as_tensor(weights, dtype=torch.float64).cpu()
    if w.shape != (n,) or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or w.sum() <= 0:
        raise ValueError(f"sampler weights must be {n} finite values >= 0, not all 0")
    return torch.multinomial(w, n, replacement=True, generator=generator)


class KeyedBatches(Sampler[list[tuple]]):
    """The global batches of each epoch, ``(epoch, image)`` keys (the epoch goes with each
    image to the worker that augments it), in an order drawn from (seed, stage, epoch).
    `sizes`: the batch sizes of an epoch (their sum may be under `n`: the rest is dropped).
    Lightning sets the epoch (`set_epoch`) before each epoch, a resumed one too.

    `weights`: the images are drawn with replacement (`epoch_order`), and each key holds its
    draw's position in the epoch, so that an image drawn twice gets other views; `params`
    (``epoch -> one number per image``, an `ImageViews` hook's): each key holds its image's
    number. Then keys are ``(epoch, image, position or None, number or None)``. Past the
    stage's `epochs` (a finished stage restored) it yields nothing and calls neither."""

    def __init__(
        self,
        n: int,
        sizes: list[int],
        seed: int,
        stage: str,
        epoch: int = 0,
        weights: SamplerWeights | None = None,
        params: Callable[[int], list[float]] | None = None,
        epochs: int | None = None,
    ) -> None:
        self.n, self.sizes, self.seed, self.stage = n, sizes, seed, stage
        self.epoch = epoch  # the first epoch: a resumed stage's loader is made before set_epoch
        self.weights, self.params, self.epochs = weights, params, epochs

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> KeyedBatches:
        """Lightning sets the epoch of a loader's ``sampler`` and ``batch_sampler.sampler``,
        not of its batch sampler: as a batch sampler, this is its own sampler."""
        return self

    def __iter__(self) -> Iterator[list[tuple]]:
        if self.epochs is not None and self.epoch >= self.epochs:
            return
        order = epoch_order(self.n, self.seed, self.stage, self.epoch, self.weights)
        if self.weights is None and self.params is None:
            for part in torch.split(order[: sum(self.sizes)], self.sizes):
                yield [(self.epoch, i) for i in part.tolist()]
            return
        params = None
        if self.params is not None:  # keyed, and the global streams left as they were: it
            # runs at another point of the loop with DataLoader workers or after a resume
            with keyed_draws(draw_seed(self.seed, self.stage, self.epoch, "params")):
                params = self.params(self.epoch)
        if params is not None and len(params) != self.n:
            raise ValueError(f"image_params gave {len(params)} numbers for {self.n} images")
        keys = [
            (
                self.epoch,
                i,
                pos if self.weights is not None else None,
                params[i] if params is not None else None,
            )
            for pos, i in enumerate(order[: sum(self.sizes)].tolist())
        ]
        start = 0
        for size in self.sizes:
            yield keys[start : start + size]
            start += size

    def __len__(self) -> int:
        return len(self.sizes)


class KeyedSteps(pl.Callback):
    """Seeds the global generators at the start of every epoch from (seed, stage, epoch,
    rank): what the training steps draw is keyed too, resumed or not."""

    def __init__(self, seed: int, stage: str) -> None:
        self.seed, self.stage = seed, stage

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch, rank = trainer.current_epoch, trainer.global_rank
        seed_all(draw_seed(self.seed, self.stage, epoch, "steps", rank))


def reseed_after(seed: int, stage: str) -> None:
    """After a stage (trained here or restored from its checkpoint): the draws up to the next
    stage depend on the stage, not on what this process ran."""
    seed_all(draw_seed(seed, stage, END))


def _numpy_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}  # fmt: skip


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["kind"], keys, state["pos"], state["has_gauss"], state["gauss"]))


class StreamState(pl.Callback):
    """``stream`` draws: the global generators' and the loaders' `generators`' states go into
    every stage checkpoint; a resumed stage sets them back as it loads the checkpoint (before
    Lightning makes the first batch), so it continues the streams where they were, and after a
    finished stage the process draws on as the uninterrupted one did."""

    def __init__(self, generators: list[torch.Generator]) -> None:
        self.generators = generators
        self.loaded: dict[str, Any] | None = None

    def restore_finished(self) -> None:
        """After a finished stage was restored: Lightning made its loader's iterator before
        seeing there was nothing to train (a draw the uninterrupted run did not make); set the
        streams back to where that run left them."""
        if self.loaded is not None:
            self.load_state_dict(self.loaded)

    def state_dict(self) -> dict[str, Any]:
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": _numpy_state(),
            "python": list(random.getstate()[1]),
            "python_gauss": random.getstate()[2],
            "generators": [g.get_state() for g in self.generators],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loaded = state_dict
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"]:
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        _set_numpy_state(state_dict["numpy"])
        random.setstate((3, tuple(state_dict["python"]), state_dict["python_gauss"]))
        for generator, saved in zip(self.generators, state_dict["generators"], strict=True):
            generator.set_state(saved)
