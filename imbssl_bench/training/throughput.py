"""Steady-state pre-training throughput of the harness's real training step.

The same path a run takes (the method's views through the DataLoader, the method's
LightningModule, a Lightning Trainer), timed after a warm-up on synthetic images of the
requested size, so the figure does not depend on a dataset being present.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import pytorch_lightning as pl
import torch

from imbssl_bench.config import RunConfig, RuntimeConfig, TrainConfig
from imbssl_bench.data import ImageSplit
from imbssl_bench.envinfo import collect_env
from imbssl_bench.methods import create_method
from imbssl_bench.methods.backbones import create_backbone, resolve_stem
from imbssl_bench.training.loaders import DeviceViewsData, train_data
from imbssl_bench.training.trainer import make_trainer, speed_up


@dataclass(frozen=True)
class ThroughputSettings:
    method: str = "simclr"
    backbone: str = "resnet18"
    stem: str = "auto"
    image_size: int = 32
    batch_size: int = 128
    steps: int = 20  # timed steps
    warmup: int = 5  # >= 1 untimed steps first (allocator, cuDNN autotuning, workers)
    num_workers: int = 0
    accelerator: str = "auto"
    precision: str = "32-true"
    augment: str = "pil"  # or "batched": views made on the training device
    channels_last: bool = False
    compile: bool = False
    seed: int = 0


class StepClock(pl.Callback):
    """Wall time of steps ``warmup .. total - 1``, from the end of step ``warmup - 1``.

    Lightning fetches one batch ahead, so this window holds exactly as many batch loads as
    steps when the data has at least ``total + 1`` batches."""

    def __init__(self, warmup: int, total: int) -> None:
        if warmup < 1:
            raise ValueError("the clock needs at least one warm-up step")
        self.warmup, self.total = warmup, total
        self.start: float | None = None
        self.end: float | None = None

    @staticmethod
    def _sync(trainer: pl.Trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step in (self.warmup, self.total):  # steps finished so far
            self._sync(trainer)
            if trainer.global_step == self.warmup:
                self.start = time.perf_counter()
            else:
                self.end = time.perf_counter()


def synthetic_split(n: int, image_size: int, seed: int) -> ImageSplit:
    """`n` random uint8 RGB images (smooth enough that crops and jitter do real work)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(
        0, 256, (n, 3, max(2, image_size // 4), max(2, image_size // 4)), generator=g
    )
    images = torch.nn.functional.interpolate(coarse.float(), size=image_size, mode="bilinear")
    return ImageSplit(
        images.round().clamp(0, 255).to(torch.uint8), torch.zeros(n, dtype=torch.long)
    )


def measure_throughput(s: ThroughputSettings) -> dict[str, Any]:
    """Images (source images, each giving the method's views) per second, after warm-up."""
    torch.manual_seed(s.seed)
    stem = resolve_stem(s.backbone, s.stem, s.image_size)
    backbone, dim = create_backbone(s.backbone, stem, image_size=s.image_size)
    train = TrainConfig(
        epochs=1,
        batch_size=s.batch_size,
        lr=0.1,
        precision=s.precision,
        augment=None if s.augment == "pil" else s.augment,
    )
    runtime = RuntimeConfig(
        accelerator=s.accelerator,
        num_workers=s.num_workers,
        channels_last=s.channels_last,
        compile=s.compile,
    )
    cfg = RunConfig(method=s.method, train=train, runtime=runtime)
    method = create_method(s.method, backbone, dim, {}, train, num_classes=10)
    total = s.warmup + s.steps
    split = synthetic_split((total + 1) * s.batch_size, s.image_size, s.seed)  # + prefetch
    data = train_data(split, method, cfg, s.image_size)
    speed_up(method, cfg)
    clock = StepClock(s.warmup, total)
    trainer = make_trainer(cfg, epochs=1, callbacks=[clock], max_steps=total)
    if isinstance(data, DeviceViewsData):
        trainer.fit(method, datamodule=data)
    else:
        trainer.fit(method, data)
    if clock.start is None or clock.end is None:
        raise RuntimeError("the timed steps did not run")
    seconds = clock.end - clock.start
    device = str(trainer.strategy.root_device)
    env = collect_env(device)
    return {
        "images_per_s": round(s.steps * s.batch_size / seconds, 2),
        "seconds": round(seconds, 3),
        "settings": {**asdict(s), "stem": stem},
        "device": device,
        "hardware": {k: env.get(k) for k in ("cpu", "cpu_count", "torch_threads", "gpus")},
    }
