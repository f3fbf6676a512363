"""The linear probe in torch against scikit-learn's, on real features: CIFAR-10 (JPEG) train
(50,000) and test (10,000) images through a randomly initialised ResNet-18 with the CIFAR stem
(the harness's `create_backbone` and `extract_features`, 512-d). Both probes fit the same
objective (standardised features, L2 at C, max_iter); reports each one's test top-1, their
difference (target < 0.5 point), iterations, objective value and fit time (median of
`--repeats`), as a markdown block, and the N x D that scikit-learn fits in about a minute
here (linear in N x D from this measurement: the `auto` threshold).

The features are cached in `--cache` (an .npz), so reruns skip decoding and extraction.

Usage: python benchmarks/linear_probe.py [--data /work/data/cifar10-jpeg] [--repeats 3]
Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from imbssl_bench.evaluation.features import extract_features
from imbssl_bench.evaluation.probes.linear import fit_linear
from imbssl_bench.evaluation.probes.torch_linear import fit_torch_linear, standardize_stats
from imbssl_bench.methods.backbones import create_backbone


def decode(split: Path) -> tuple[torch.Tensor, np.ndarray]:
    """uint8 images (N, 3, 32, 32) and labels of an ImageFolder split (classes sorted)."""
    classes = sorted(d.name for d in split.iterdir() if d.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((split / name).glob("*.jpg")):
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGB")))
            labels.append(label)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), np.array(labels)


def features(data: Path, cache: Path) -> dict[str, np.ndarray]:
    if cache.exists():
        return dict(np.load(cache))
    torch.manual_seed(0)
    backbone, _ = create_backbone("resnet18", "cifar", image_size=32)
    out = {}
    for split in ("train", "test"):
        images, labels = decode(data / split)
        out[f"{split}_x"] = extract_features(backbone, images, 32, batch_size=512)
        out[f"{split}_y"] = labels
    np.savez(cache, **out)
    return out


def objective(model: Any, x: np.ndarray, y: np.ndarray, c: float) -> float:
    """mean CE + ||W||^2 / (2 C n) at the fitted weights, in float64 (either backend)."""
    if hasattr(model, "weight"):
        mean, scale = model.mean.cpu().double().numpy(), model.scale.cpu().double().numpy()
        w, b = model.weight.cpu().double().numpy(), model.bias.cpu().double().numpy()
    else:
        scaler, logreg = model[0], model[-1]
        mean, scale, w, b = scaler.mean_, scaler.scale_, logreg.coef_, logreg.intercept_
    z = ((x - mean) / scale) @ w.T + b
    if z.shape[1] == 1:
        z = np.concatenate([np.zeros_like(z), z], axis=1)
    z -= z.max(axis=1, keepdims=True)
    ce = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]
    return float(ce.mean() + np.square(w).sum() / (2 * c * len(y)))


def bench(fit: Any, d: dict[str, np.ndarray], c: float, repeats: int) -> dict[str, Any]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        model, info = fit()
        seconds.append(time.perf_counter() - start)
    top1 = float(np.mean(model.predict(d["test_x"]) == d["test_y"]))
    loss = objective(model, d["train_x"].astype(np.float64), d["train_y"], c)
    return {"seconds": statistics.median(seconds), "top1": top1, "objective": loss, **info}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/data/cifar10-jpeg"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/linear_probe_cifar10_r18.npz"))
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    d = features(args.data, args.cache)
    x, y, c, it = d["train_x"], d["train_y"], args.c, args.max_iter
    mean, scale = standardize_stats(x)
    runs = {
        "scikit-learn (`fit_linear`)": bench(lambda: fit_linear(x, y, c, it), d, c, args.repeats),
        "torch (`fit_torch_linear`, CPU)": bench(
            lambda: fit_torch_linear(x, y, c, it, device="cpu"), d, c, args.repeats
        ),
    }
    if torch.cuda.is_available():
        runs["torch (`fit_torch_linear`, GPU)"] = bench(
            lambda: fit_torch_linear(x, y, c, it, device="cuda"), d, c, args.repeats
        )
    sk = runs["scikit-learn (`fit_linear`)"]
    n, dim = x.shape
    print(f"CIFAR-10 (JPEG), random-init ResNet-18 (CIFAR stem) features: train {n} x {dim}, "
          f"test {len(d['test_x'])}; C = {c}, max_iter = {it}; "
          f"{torch.get_num_threads()} threads; median of {args.repeats}\n")  # fmt: skip
    print("| probe | fit seconds | iterations | converged | objective | test top-1 | "
          "|diff| vs scikit-learn (points) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, r in runs.items():
        diff = abs(r["top1"] - sk["top1"]) * 100
        print(f"| {name} | {r['seconds']:.2f} | {r['n_iter']} | {r['converged']} | "
              f"{r['objective']:.6f} | {r['top1']:.4f} | {diff:.2f} |")  # fmt: skip
    per_minute = n * dim * 60 / sk["seconds"]
    print(f"\nstandardisation in torch vs StandardScaler: max |mean diff| "
          f"{np.abs(mean - _sk_scaler(x).mean_).max():.2e}, max |scale diff| "
          f"{np.abs(scale - _sk_scaler(x).scale_).max():.2e}")  # fmt: skip
    print(f"scikit-learn fits about {per_minute / 1e6:.0f}M feature values (N x D) a minute here")


def _sk_scaler(x: np.ndarray) -> Any:
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(x)


if __name__ == "__main__":
    main()
