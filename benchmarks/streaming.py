"""Streaming datasets: memory and speed of the harness's streaming path on a tree of JPEGs of
mixed sizes (sides 64-256 px, 10 classes, made here, smooth random images).

(a) Peak RSS of one epoch of the harness's streaming training loader (ImageFolder listing,
    header scan, content fingerprint, then every image decoded and turned into SimCLR's two
    64 px views by 2 DataLoader workers), for 10k and for 100k images, each in a fresh
    process: the main process's peak and the largest worker's.
(b) Images/s of that loader next to a plain torchvision ``ImageFolder`` + ``DataLoader`` with
    the same workers, batch and Lightly transform, alternating, medians of --repeats.
(c) One epoch of SimCLR at 64 px (resnet18, timm stem, batch 128) on the 10k tree through
    ``imbssl-bench run --streaming``: the record's pre-training time.

Usage:
    python benchmarks/streaming.py --root /tmp/stream-bench [--counts 10000,100000]
        [--workers 2] [--repeats 3] [--batches 30] [--skip-epoch]
Run nothing else meanwhile: two torch processes on one machine slow each other.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

CLASSES = [f"c{i}" for i in range(10)]
VIEW_SIZE = 64


def _write(args: tuple[Path, int]) -> None:
    path, seed = args
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(64, 257, size=2))
    small = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((w, h), Image.BILINEAR)
    image.save(path, quality=90)


def make_tree(root: Path, count: int, test_per_class: int = 100) -> Path:
    """`count` train images (count / 10 per class) + a small test split; reused if present."""
    tree = root / f"n{count}"
    done = tree / ".complete"
    if done.is_file():
        return tree
    jobs = []
    for split, per_class in (("train", count // len(CLASSES)), ("test", test_per_class)):
        for c, cls in enumerate(CLASSES):
            (tree / split / cls).mkdir(parents=True, exist_ok=True)
            seed = (count, split == "test", c)
            jobs += [(tree / split / cls / f"{i:06d}.jpg", hash((*seed, i)) % 2**32)
                     for i in range(per_class)]  # fmt: skip
    with Pool(os.cpu_count()) as pool:
        pool.map(_write, jobs, chunksize=256)
    done.write_text("ok\n")
    return tree


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def harness_loader(tree: Path, workers: int, batch: int):  # type: ignore[no-untyped-def]
    """The harness's streaming path: the dataset's train split as files, SimCLR's views."""
    from imbssl_bench.config import RunConfig, RuntimeConfig, TrainConfig
    from imbssl_bench.data import create_dataset
    from imbssl_bench.methods import create_method
    from imbssl_bench.methods.backbones import create_backbone
    from imbssl_bench.training.loaders import train_loader

    source = create_dataset("imagefolder", str(tree))
    source.fingerprint()  # planning hashes every file: part of the path's memory
    assert source.choose_storage(None) == "streaming", "expected mixed sizes"
    split = source.load("streaming").train
    cfg = RunConfig(
        method="simclr",
        train=TrainConfig(batch_size=batch),
        runtime=RuntimeConfig(num_workers=workers),
    )
    backbone, dim = create_backbone("resnet18", "timm", image_size=VIEW_SIZE)
    method = create_method("simclr", backbone, dim, {}, cfg.train, len(source.classes))
    return train_loader(split, method, cfg, VIEW_SIZE)


def plain_loader(tree: Path, workers: int, batch: int):  # type: ignore[no-untyped-def]
    """torchvision's ImageFolder + DataLoader with Lightly's SimCLR transform."""
    import torch
    from lightly.transforms import SimCLRTransform
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(tree / "train"), transform=SimCLRTransform(input_size=VIEW_SIZE))
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
        persistent_workers=workers > 0,
    )  # fmt: skip


def epoch_rss(tree: Path, workers: int) -> dict:
    """(a), in this (fresh) process: one epoch of the harness's loader."""
    t0 = time.perf_counter()
    loader = harness_loader(tree, workers, 128)
    t1 = time.perf_counter()
    images = sum(len(batch[1]) for batch in loader)
    t2 = time.perf_counter()
    del loader  # persistent workers end here, so that their peak counts as a child's
    gc.collect()
    return {
        "images": images,
        "setup_s": round(t1 - t0, 1),
        "epoch_s": round(t2 - t1, 1),
        "peak_rss_main_mib": round(_rss_mib(resource.RUSAGE_SELF)),
        "peak_rss_worker_mib": round(_rss_mib(resource.RUSAGE_CHILDREN)),
    }


def _rate(loader, batches: int, warmup: int = 3) -> float:  # type: ignore[no-untyped-def]
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    t0, n = time.perf_counter(), 0
    for _ in range(batches):
        n += len(next(it)[1])
    return n / (time.perf_counter() - t0)


def throughput(tree: Path, workers: int, repeats: int, batches: int) -> dict:
    """(b): the two loaders alternating, fresh loaders each repeat."""
    rates: dict[str, list[float]] = {"harness": [], "torchvision": []}
    for _ in range(repeats):
        for name, make in (("harness", harness_loader), ("torchvision", plain_loader)):
            rates[name].append(_rate(make(tree, workers, 128), batches))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "images_per_s": {k: round(v, 1) for k, v in med.items()},
        "runs": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "ratio_harness_over_torchvision": round(med["harness"] / med["torchvision"], 3),
    }


def simclr_epoch(tree: Path, out: Path, workers: int) -> dict:
    """(c): one epoch through the CLI, its record's timing."""
    cmd = [
        sys.executable, "-m", "imbssl_bench.cli", "run", "--method", "simclr", "--ratios", "1",
        "--dataset", "imagefolder", "--data-root", str(tree), "--streaming", "--image-size",
        str(VIEW_SIZE), "--backbone", "resnet18", "--stem", "timm", "--epochs", "1",
        "--batch-size", "128", "--num-workers", str(workers), "--probe-per-class", "100",
        "--out", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (record,) = [json.loads(p.read_text()) for p in out.rglob("*.json")
                 if p.parent.name != "checkpoints"]  # fmt: skip
    return {
        "command": " ".join(cmd[1:]),
        "storage": record["storage"],
        "n_train": record["n_train"],
        "pretrain_s": record["timing"]["pretrain_s"],
        "images_per_s": round(record["n_train"] / record["timing"]["pretrain_s"], 1),
        "peak_rss_mib": record.get("memory"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path("/tmp/stream-bench"))
    p.add_argument("--counts", default="10000,100000")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--skip-epoch", action="store_true", help="leave out (c)")
    p.add_argument("--epoch-rss", type=Path, help=argparse.SUPPRESS)  # (a) in a fresh process
    a = p.parse_args()
    if a.epoch_rss:
        print(json.dumps(epoch_rss(a.epoch_rss, a.workers)))
        return
    counts = [int(c) for c in a.counts.split(",")]
    trees = {n: make_tree(a.root, n) for n in counts}
    result: dict = {"workers": a.workers, "view_size": VIEW_SIZE, "cpu_count": os.cpu_count()}
    result["epoch_rss"] = {}
    for n, tree in trees.items():
        cmd = [sys.executable, __file__, "--epoch-rss", str(tree), "--workers", str(a.workers)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        result["epoch_rss"][n] = json.loads(out.strip().splitlines()[-1])
        print(json.dumps({n: result["epoch_rss"][n]}), flush=True)
    smallest = trees[min(counts)]
    result["throughput"] = throughput(smallest, a.workers, a.repeats, a.batches)
    print(json.dumps(result["throughput"]), flush=True)
    if not a.skip_epoch:
        out = a.root / "simclr-epoch"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        result["simclr_epoch"] = simclr_epoch(smallest, out, a.workers)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
