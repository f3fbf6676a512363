"""What two trust fixes of issue 14 cost, side by side with what they replace.

1. The content fingerprint of an image folder (names, sizes and bytes of every file): hashed
   with an empty cache, then with the cache warm (a later `imbssl-bench run` on the same tree).
2. Colour jitter on the batched path: kornia's ColorJitter (one op order per batch) against
   `PerImageOrderJitter` (an order per image, as torchvision), same ranges, same batch.

Medians of --repeats runs. Usage:
    python benchmarks/identity_costs.py --data-root DIR [--batch 512] [--size 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from statistics import median

import kornia.augmentation as K
import torch

from imbssl_bench.training.augment import PerImageOrderJitter


def _seconds(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


def fingerprint_seconds(root: Path, repeats: int) -> dict[str, float]:
    from imbssl_bench.data.imagefolder import ImageFolder
    from imbssl_bench.files import CACHE_ENV

    def fresh() -> str:  # a new source each time: the fingerprint is memoised per source
        return ImageFolder(root)._fingerprint

    with tempfile.TemporaryDirectory() as cache:
        os.environ[CACHE_ENV] = cache
        uncached = []
        for _ in range(repeats):
            for f in Path(cache).glob("*"):
                f.unlink()
            uncached.append(_seconds(fresh, 1))
        cached = _seconds(fresh, repeats)
    return {"uncached_s": round(median(uncached), 2), "cached_s": round(cached, 2)}


def jitter_ms(batch: int, size: int, repeats: int) -> dict[str, float]:
    ranges = ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))  # Lightly's cj_strength 0.5
    per_batch = K.ColorJitter(*ranges, p=0.8)
    per_image = PerImageOrderJitter(*ranges, p=0.8)
    x = torch.rand(batch, 3, size, size)
    with torch.no_grad():
        for fn in (per_batch, per_image):  # warm-up
            fn(x)
        return {
            "kornia_per_batch_ms": round(1000 * _seconds(lambda: per_batch(x), repeats), 1),
            "per_image_order_ms": round(1000 * _seconds(lambda: per_image(x), repeats), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True, help="an ImageFolder tree")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = {
        "fingerprint": fingerprint_seconds(args.data_root, args.repeats),
        "jitter": jitter_ms(args.batch, args.size, args.repeats),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
