"""A stage's curves while it trains: its mean loss after every epoch and the online kNN, the
backbone's weighted-kNN top-1 (the kNN probe, faiss) on a small balanced bank of the probe pool
and a balanced share of the test split, every few epochs and after the last. Lightly's CIFAR-10
benchmark reports the best such kNN over epochs; solo-learn shows the curve. The curves are
saved in the stage's checkpoints (a resumed stage keeps its points), and computing them draws
no random number and leaves the backbone's mode and statistics as they were, so a monitored
run trains exactly as an unmonitored one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch import nn

from imbssl_bench.data import Split, probe_subset
from imbssl_bench.evaluation.features import extract_features
from imbssl_bench.evaluation.probes.knn import knn_predict
from imbssl_bench.evaluation.protocol import collapse
from imbssl_bench.methods import Method

PER_CLASS = 100  # bank images and test images per class (fewer when a class has fewer)
POINTS = 10  # monitor points per stage by default


def resolve_every(epochs: int, every: int | None) -> int:
    """Epochs between points: `every`, or about `POINTS` per stage when None (0: off).

    Examples:
        >>> resolve_every(30, None), resolve_every(200, None), resolve_every(2, None)
        (3, 20, 1)
    """
    return max(1, round(epochs / POINTS)) if every is None else every


def balanced_share(split: Split, per_class: int) -> Split:
    """`per_class` images of every class of `split` (as many as its smallest class has, if
    fewer), one fixed draw."""
    targets = np.asarray(split.targets)
    smallest = int(np.bincount(targets).min()) if len(targets) else 0
    return split.subset(probe_subset(targets, min(per_class, smallest)))


@dataclass(frozen=True)
class MonitorData:
    """What the online kNN reads: its bank and test share, and how images enter the backbone."""

    bank: Split
    test: Split
    num_classes: int
    image_size: int
    normalize: dict[str, list[float]]
    k: int = 200
    temperature: float = 0.1

    @classmethod
    def of(cls, pool: Split, test: Split, num_classes: int, image_size: int, **kw: Any):
        share = (balanced_share(pool, PER_CLASS), balanced_share(test, PER_CLASS))
        return cls(*share, num_classes, image_size, **kw)

    def top1(self, backbone: nn.Module, device: Any) -> tuple[float, dict[str, float]]:
        """kNN top-1 of `backbone` and the collapse metric of its bank features."""
        bank, test = (
            extract_features(backbone, s, self.image_size, 512, device, self.normalize)
            for s in (self.bank, self.test)
        )
        pred = knn_predict(
            bank, np.asarray(self.bank.targets), test, self.num_classes, self.k, self.temperature
        )
        return float(np.mean(pred == np.asarray(self.test.targets))), collapse(bank)


def trained_backbone(module: pl.LightningModule) -> nn.Module | None:
    """The backbone a stage trains: a `Method`'s, or that of the method a variant wraps."""
    method = module if isinstance(module, Method) else getattr(module, "wrapped", None)
    return method.backbone if isinstance(method, Method) else None


class StageCurves(pl.Callback):
    """The stage's curves: its mean loss after every epoch (`losses`, ``[epoch, loss]``) and,
    with `data`, every `every` epochs (None: about `POINTS` per stage) and after the last, the
    kNN top-1 (`curve`, ``[epoch, top1]``), logged as ``knn_top1`` with the collapse metric;
    rank 0 only."""

    def __init__(self, data: MonitorData | None, every: int | None = None) -> None:
        self.data, self.requested = data, every
        self.every = every or 1
        self.curve: list[list[float]] = []
        self.losses: list[list[float]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.every = resolve_every(int(trainer.max_epochs or 1), self.requested)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        loss = trainer.callback_metrics.get("train_loss_epoch")
        if loss is not None:
            self.losses.append([epoch, round(float(loss), 5)])
        if self.data is None:  # --monitor-every 0: the loss curve only
            return
        backbone = trained_backbone(pl_module)
        due = epoch % self.every == 0 or epoch == trainer.max_epochs
        if not due or backbone is None or trainer.global_rank != 0:
            return
        top1, spread = self.data.top1(backbone, pl_module.device)
        self.curve.append([epoch, round(top1, 4)])
        values = {"knn_top1": top1, "feature_std_x_sqrt_dim": spread["feature_std_x_sqrt_dim"]}
        for name, value in values.items():
            pl_module.log(name, value, on_step=False, on_epoch=True, rank_zero_only=True)

    @property
    def state_key(self) -> str:
        return "OnlineKNN"  # its name in checkpoints of earlier versions: they resume with it

    def state_dict(self) -> dict[str, Any]:
        return {"curve": self.curve, "losses": self.losses}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.curve = [list(p) for p in state_dict.get("curve", [])]
        self.losses = [list(p) for p in state_dict.get("losses", [])]


def curve_metrics(monitors: dict[str, StageCurves]) -> dict[str, Any]:
    """The record's curves of the last watched stage (the one that made the final backbone):
    ``loss_curve`` (and its ``loss_stage``) and, when monitored, ``knn_curve``,
    ``knn_top1_best`` over it and ``knn_monitor`` (settings, every stage's kNN curve); empty
    when no stage trained."""
    trained = [stage for stage, m in monitors.items() if m.losses]
    out: dict[str, Any] = {}
    if trained:
        out = {"loss_curve": monitors[trained[-1]].losses, "loss_stage": trained[-1]}
    curves = {stage: m.curve for stage, m in monitors.items() if m.curve}
    if not curves:
        return out
    stage = list(curves)[-1]
    data = monitors[stage].data
    assert data is not None
    return {
        **out,
        "knn_curve": curves[stage],
        "knn_top1_best": max(top1 for _, top1 in curves[stage]),
        "knn_monitor": {
            "stage": stage,
            "every": monitors[stage].every,
            "bank_images": len(data.bank),
            "test_images": len(data.test),
            "k": data.k,
            "curves": curves,
        },
    }
