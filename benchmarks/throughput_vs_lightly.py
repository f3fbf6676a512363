"""Harness pre-training throughput next to a plain Lightly loop, side by side in one process.

The plain loop is SimCLR (or SimSiam) as Lightly's docs write it: PIL images from uint8 arrays
(as torchvision's CIFAR10 does), Lightly's SimCLRTransform (SimSiamTransform) in a DataLoader,
a backbone + the method's heads, NTXentLoss (NegativeCosineSimilarity), SGD, a hand-written
loop, fp32 unless `--lightly-precision` says otherwise. Same backbone (imbssl-bench's timm
model with the same stem), same heads (SimSiam: the harness's 2048-d projection + predictor),
same batch, same synthetic images, same device. The harness side runs `imbssl-bench run`'s
default path unless told otherwise (`--augment auto`, `--precision auto`, channels-last). The
two alternate `--repeats` times; the medians and their ratio are printed as JSON.

Usage:
    python benchmarks/throughput_vs_lightly.py [--backbone resnet18] [--image-size 32]
        [--method simclr|simsiam] [--stem timm] [--batch-size 128] [--steps 20] [--warmup 5]
        [--repeats 3] [--harness-workers 0] [--lightly-workers N]
        [--precision auto|32-true|bf16-mixed] [--lightly-precision 32-true|bf16-mixed]
        [--augment auto|batched|pil] [--[no-]channels-last] [--gpu-util]
`--gpu-util` (CUDA): the GPU's mean utilisation while each side runs (torch.cuda.utilization,
sampled every 0.1 s), and which bounds it: compute (GPU busy >= 80%) or data / host.
Run nothing else meanwhile: two torch processes on one machine slow each other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections.abc import Callable

import torch
from lightly.loss import NegativeCosineSimilarity, NTXentLoss
from lightly.models.modules import SimCLRProjectionHead, SimSiamPredictionHead
from lightly.transforms import SimCLRTransform, SimSiamTransform
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from imbssl_bench.methods.backbones import create_backbone, resolve_stem
from imbssl_bench.methods.simsiam import simsiam_projection_head
from imbssl_bench.running.fastpath import resolve_auto
from imbssl_bench.training.throughput import ThroughputSettings, measure_throughput, synthetic_split


class PILImages(Dataset):
    """uint8 HWC arrays served as PIL images through a transform, as torchvision's CIFAR10."""

    def __init__(self, images: torch.Tensor, transform) -> None:  # type: ignore[no-untyped-def]
        self.hwc = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.hwc)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        return self.transform(Image.fromarray(self.hwc[i])), 0


class SimCLR(nn.Module):
    def __init__(self, backbone: nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection_head = SimCLRProjectionHead(dim, 512, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.backbone(x).flatten(start_dim=1))

    def loss(self, criterion: nn.Module, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return criterion(self(x0), self(x1))


class SimSiam(nn.Module):
    """The harness's SimSiam heads (2048-d, 2 projection layers, 512-d predictor)."""

    def __init__(self, backbone: nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection_head = simsiam_projection_head(dim, 2048, 2)
        self.prediction_head = SimSiamPredictionHead(2048, 512, 2048)

    def loss(self, criterion: nn.Module, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        z0, z1 = (self.projection_head(self.backbone(x).flatten(start_dim=1)) for x in (x0, x1))
        p0, p1 = self.prediction_head(z0), self.prediction_head(z1)
        return 0.5 * (criterion(z0, p1.detach()) + criterion(z1, p0.detach()))


def plain_parts(a: argparse.Namespace, backbone: nn.Module, dim: int):  # type: ignore[no-untyped-def]
    """The plain loop's model, transform, loss and lr for `a.method`, as Lightly's docs."""
    if a.method == "simsiam":
        transform = SimSiamTransform(input_size=a.image_size, gaussian_blur=0.0, min_scale=0.2)
        return SimSiam(backbone, dim), transform, NegativeCosineSimilarity(), 0.06
    transform = SimCLRTransform(input_size=a.image_size, cj_strength=0.5, gaussian_blur=0.0)
    return SimCLR(backbone, dim), transform, NTXentLoss(temperature=0.5), 0.06


def lightly_loop(a: argparse.Namespace, device: torch.device) -> float:
    """Images/s of the plain loop over `a.steps` steps after `a.warmup`."""
    torch.manual_seed(0)
    stem = resolve_stem(a.backbone, a.stem, a.image_size)
    backbone, dim = create_backbone(a.backbone, stem, image_size=a.image_size)
    model, transform, criterion, lr = plain_parts(a, backbone, dim)
    model = model.to(device)
    split = synthetic_split((a.warmup + a.steps) * a.batch_size, a.image_size, 0)
    assert a.warmup >= 1, "the clock starts after the first warm-up step"
    loader = DataLoader(
        PILImages(split.images, transform),
        batch_size=a.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=a.lightly_workers,
        pin_memory=device.type == "cuda",
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    bf16 = a.lightly_precision.startswith("bf16")  # autocast, as Lightning's
    start = None
    for step, ((x0, x1), _) in enumerate(loader):
        x0, x1 = x0.to(device, non_blocking=True), x1.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(criterion, x0, x1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step == a.warmup - 1:  # the window holds the loads of the timed batches
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.synchronize()
    assert start is not None
    return a.steps * a.batch_size / (time.perf_counter() - start)


class GpuBusy:
    """The GPU's utilisation (%) sampled every `every` s in a thread while the block runs."""

    def __init__(self, every: float = 0.1) -> None:
        self.every, self.samples = every, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(torch.cuda.utilization())

    def __enter__(self) -> GpuBusy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return round(statistics.mean(self.samples), 1) if self.samples else None


def bound(busy: float | None) -> str | None:
    """What limits a side: compute when the GPU is busy >= 80% of the time, else data / host."""
    if busy is None:
        return None
    return "compute" if busy >= 80 else "data / host (the GPU waits)"


def timed(measure: Callable[[], float], util: list[float | None], watch: bool) -> float:
    """`measure()`, and (`watch`) the GPU's mean utilisation meanwhile appended to `util`."""
    if not watch:
        return measure()
    with GpuBusy() as busy:
        value = measure()
    util.append(busy.mean)
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="simclr", choices=["simclr", "simsiam"])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--stem", default="timm", choices=["timm", "cifar", "auto"])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--harness-workers", type=int, default=0)
    p.add_argument("--lightly-workers", type=int, default=os.cpu_count() or 0)
    p.add_argument("--precision", default="auto", help="the harness's (Lightning's)")
    p.add_argument("--lightly-precision", default="32-true", help="32-true or bf16-mixed")
    p.add_argument("--augment", default="auto", choices=["auto", "batched", "pil"])
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--gpu-util", action="store_true", help="GPU utilisation per side (CUDA)")
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # the default path of `imbssl-bench run` (running/fastpath.py) where `auto`
    a.augment, a.precision = resolve_auto(a.method, a.image_size, "auto", a.augment, a.precision)
    settings = ThroughputSettings(
        method=a.method,
        backbone=a.backbone,
        stem=a.stem,
        image_size=a.image_size,
        batch_size=a.batch_size,
        steps=a.steps,
        warmup=a.warmup,
        num_workers=a.harness_workers,
        precision=a.precision,
        augment=a.augment,
        channels_last=a.channels_last,
    )
    harness, lightly = [], []
    watch = a.gpu_util and device.type == "cuda"
    util: dict[str, list[float | None]] = {"harness": [], "lightly": []}
    for _ in range(a.repeats):
        harness.append(timed(lambda: measure_throughput(settings)["images_per_s"],
                             util["harness"], watch))  # fmt: skip
        lightly.append(timed(lambda: lightly_loop(a, device), util["lightly"], watch))
    h, lo = statistics.median(harness), statistics.median(lightly)
    busy = {side: statistics.median(v) if v and None not in v else None for side, v in util.items()}
    gpu = {f"gpu_busy_{s}": b for s, b in busy.items()} if watch else {}
    gpu |= {"gpu_busy_covers": "each side's whole call: set-up and warm-up too"} if watch else {}
    gpu |= {f"bound_{s}": bound(b) for s, b in busy.items()} if watch else {}
    print(
        json.dumps(
            {
                "harness_images_per_s": [round(x, 1) for x in harness],
                "lightly_images_per_s": [round(x, 1) for x in lightly],
                "median_harness": round(h, 1),
                "median_lightly": round(lo, 1),
                "ratio": round(h / lo, 3),
                **gpu,
                "settings": vars(a),
                "device": str(device),
                "torch_threads": torch.get_num_threads(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
