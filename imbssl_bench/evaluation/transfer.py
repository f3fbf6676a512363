"""Out-of-domain evaluation (``--transfer NAME[:ROOT][@CLASSES]``): the frozen backbone probed,
with the same probes, on other datasets, as Liu et al. (ICLR 2022) probe CIFAR-10 models on
STL-10. Each target's train split is the probe pool (``probe_per_class`` images per class when
every class has that many, else all of it) and its test split is scored.

``@CLASSES`` keeps some classes of the target (``0-4``, ``airplane+cat``; ``+`` separates
items, since commas separate targets), e.g. pre-train on CIFAR-10's classes 0-4 and transfer
to its classes 5-9: ``--classes 0-4 --transfer imagefolder:DIR@5-9``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from imbssl_bench.config import EvalConfig, RunConfig
from imbssl_bench.data import DatasetSource, class_subset, create_dataset, probe_subset
from imbssl_bench.errors import UserError
from imbssl_bench.evaluation.features import extract_features
from imbssl_bench.evaluation.probes import PROBES


@dataclass(frozen=True)
class TransferTarget:
    key: str  # how records and tables name it: NAME, or NAME@CLASSES
    dataset: str
    root: str | None = None
    classes: str | None = None

    def open(self) -> DatasetSource:
        if self.dataset == "filelist":
            raise UserError(
                "--transfer cannot read a filelist (its lists are the main dataset's options); "
                "give the target as an imagefolder tree or another dataset"
            )
        source = create_dataset(self.dataset, self.root)
        return class_subset(source, self.classes) if self.classes else source


def parse_target(text: str) -> TransferTarget:
    """``NAME[:ROOT][@CLASSES]`` -> its target.

    Examples:
        >>> t = parse_target("imagefolder:/data/cifar@5-9")
        >>> t.key, t.dataset, t.root, t.classes
        ('imagefolder@5-9', 'imagefolder', '/data/cifar', '5-9')
    """
    body, at, classes = text.strip().rpartition("@")
    if not at:
        body, classes = classes, ""
    name, _, root = body.partition(":")
    if not name:
        raise UserError(f"bad --transfer '{text}': write NAME[:ROOT][@CLASSES], e.g. digits")
    key = f"{name}@{classes}" if classes else name
    return TransferTarget(key, name, root or None, classes.replace("+", ",") or None)


def resolve_targets(texts: Sequence[str]) -> dict[str, TransferTarget]:
    """The targets by key, each opened once (a clear error for an unknown or absent
    dataset before anything runs); a key given twice is an error."""
    targets: dict[str, TransferTarget] = {}
    for target in map(parse_target, texts):
        if target.key in targets:
            raise UserError(f"--transfer names '{target.key}' twice; give each target once")
        targets[target.key] = target
    for target in targets.values():
        target.open().train_targets()
    return targets


def _probe_pool(source: DatasetSource, per_class: int | None) -> np.ndarray:
    targets = source.train_targets()
    fits = per_class is not None and per_class <= np.bincount(targets).min()
    return probe_subset(targets, per_class if fits else None)


@torch.no_grad()
def transfer_metrics(
    backbone: nn.Module,
    target: TransferTarget,
    cfg: EvalConfig,
    image_size: int,
    device: str | torch.device,
    seed: int,
    normalize: dict[str, list[float]],
    workers: int = 0,
) -> dict[str, Any]:
    """Top-1 of every probe on the target's test split, and the sizes it was measured on."""
    source = target.open()
    data = source.load(source.choose_storage(None))
    pool = data.train.subset(_probe_pool(source, cfg.probe_per_class))
    feats = [
        extract_features(
            backbone, s, image_size, cfg.feature_batch_size, device, normalize, workers
        )
        for s in (pool, data.test)
    ]
    if not all(np.isfinite(f).all() for f in feats):
        raise FloatingPointError(f"non-finite features on transfer target '{target.key}'")
    train_y, test_y = pool.targets.numpy(), data.test.targets.numpy()
    out: dict[str, Any] = {}
    for name, probe in PROBES.items():
        pred = probe(feats[0], train_y, feats[1], len(data.classes), cfg, seed, None).test
        out[f"{name}_top1"] = float(np.mean(pred == test_y))
    return {**out, "n_probe": len(pool), "n_test": len(data.test), "classes": len(data.classes)}


def planned_targets(cfg: RunConfig) -> dict[str, TransferTarget]:
    """The run's --transfer targets, each on the data its run id names (``eval.transfer``:
    their fingerprints, planned): checked before training, so a change costs no training."""
    planned = cfg.eval.transfer or {}
    targets = resolve_targets(cfg.runtime.transfer or ())
    for key, target in targets.items():
        found = target.open().fingerprint() or None
        if key not in planned or found != planned[key]:
            raise UserError(
                f"the --transfer data '{key}' changed since the grid was planned (fingerprint "
                f"{found}, planned {planned.get(key)}); run the command again"
            )
    return targets


def transfer_section(
    backbone: nn.Module,
    targets: dict[str, TransferTarget],
    cfg: RunConfig,
    image_size: int,
    device: str | torch.device,
    normalize: dict[str, list[float]],
    stage: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """``metrics.transfer``: each target's probes; a target that cannot be read or gives
    non-finite features is ``{"error": ...}``, and the run's other results stay."""
    out: dict[str, Any] = {}
    for key, target in targets.items():
        stage(f"transfer {key}")
        try:
            out[key] = transfer_metrics(
                backbone, target, cfg.eval, image_size, device, cfg.seed, normalize,
                cfg.runtime.num_workers,
            )  # fmt: skip
        except (OSError, FloatingPointError) as exc:
            out[key] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
