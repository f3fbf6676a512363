"""Where a CPU pre-training step's time goes: the two views of one batch made by the method's
Lightly PIL transform (one process) and by the harness's batched (kornia) views, and the
forward + backward + SGD step of the model on ready views (fp32, channels-last, bf16 autocast,
and bf16 autocast with channels-last: the default path's step where the CPU computes bf16).

Usage: python benchmarks/step_breakdown.py [--method simclr|simsiam] [--backbone resnet18]
    [--image-size 32] [--stem timm] [--batch-size 128] [--repeats 5]
Prints the median seconds per batch of each part as JSON. Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from PIL import Image

from imbssl_bench.config import TrainConfig
from imbssl_bench.methods import create_method
from imbssl_bench.methods.backbones import create_backbone
from imbssl_bench.training.augment import batched_views
from imbssl_bench.training.throughput import synthetic_split


def median_s(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="simclr", choices=["simclr", "simsiam"])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--stem", default="timm")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    images = synthetic_split(a.batch_size, a.image_size, 0).images
    backbone, dim = create_backbone(a.backbone, a.stem, image_size=a.image_size)
    method = create_method(a.method, backbone, dim, {}, TrainConfig(), 10)
    transform = method.build_transform(a.image_size)
    batched = batched_views(transform, a.image_size)
    hwc = images.permute(0, 2, 3, 1).numpy()
    result = {
        "pil_views_s": median_s(lambda: [transform(Image.fromarray(x)) for x in hwc], a.repeats),
        "batched_views_s": median_s(lambda: batched(images), a.repeats),
    }
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1)
    views = batched(images)

    def step(bf16: bool = False) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = method.per_example_loss(views, images.new_zeros(0)).float().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    result["step_fp32_s"] = median_s(step, a.repeats)
    result["step_bf16_autocast_s"] = median_s(lambda: step(True), a.repeats)
    method.to(memory_format=torch.channels_last)
    views = [v.contiguous(memory_format=torch.channels_last) for v in views]
    result["step_fp32_channels_last_s"] = median_s(step, a.repeats)
    result["step_bf16_channels_last_s"] = median_s(lambda: step(True), a.repeats)
    result["settings"] = vars(a) | {"torch_threads": torch.get_num_threads()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
