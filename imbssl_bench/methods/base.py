"""The method API: a LightningModule that owns its heads, views and loss.

A method plugin subclasses `Method`, sets `name`/`description`, optionally an ``Args``
dataclass of hyperparameters (stored resolved in every record), and implements `build`
(heads and losses), `build_transform` (the views) and `per_example_loss` (one loss per image;
the training loss is its mean, and re-weighting variants such as rwSAM need it; a method whose
loss does not split per image implements `training_loss` instead, and those variants refuse
it). `training_loss` must not call `self.log` (variants wrap the method in their own
LightningModule). The step receives ``(views, targets, indices)``. Methods with momentum
teachers, memory banks or prototypes override `before_step`, which the harness calls once per
optimisation step (also under variants that compute the loss twice per step, such as rwSAM).
A method that keeps parameters fixed for a while lists them in `frozen_parameters` rather than
toggling ``requires_grad`` (which breaks DDP).
The harness gives a method a headless backbone, the feature dimension, the training config,
the number of classes and, before every step, `step`, `total_steps` and `epoch`; the Trainer
owns the loop, devices and precision. See docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor, nn

from imbssl_bench.config import LrRule, TrainConfig, make_args


@dataclass(frozen=True)
class NoArgs:
    """A method without hyperparameters of its own."""


class Method(pl.LightningModule):
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Args: ClassVar[type] = NoArgs
    trains: ClassVar[bool] = True  # False: evaluated as initialised (the `random` control)
    # the default lr: Lightly's CIFAR-10 benchmark, SGD 0.06 x batch / 128 (docs/methods.md)
    default_lr: ClassVar[LrRule] = LrRule(0.06, "linear")
    # mean/std of the inputs, which evaluation applies too; None: read from the transform
    input_normalize: ClassVar[dict[str, list[float]] | None] = None

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        args: Any,
        train: TrainConfig,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.args = args
        self.train_cfg = train
        self.num_classes = num_classes
        self.step, self.total_steps, self.epoch = 0, 1, 0  # set by `begin_step`
        self.build()

    def build(self) -> None:
        """Create the heads and losses from ``self.feature_dim`` and ``self.args``."""

    @classmethod
    def make_args(cls, overrides: dict[str, Any] | None = None) -> Any:
        """The method's ``Args`` with `overrides` applied; unknown keys are a `UserError`."""
        return make_args(cls.Args, overrides or {}, f"method '{cls.name}'")

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        """The multi-view training transform of one RGB PIL image."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_transform")

    def input_normalization(self, image_size: int) -> dict[str, list[float]]:
        """The ``{"mean", "std"}`` the training views are normalised with, so that frozen
        features are computed alike: `input_normalize` when set, else the transform's
        ``Normalize`` (a transform without one: mean 0, std 1)."""
        if self.input_normalize is not None:
            return {k: [float(x) for x in v] for k, v in self.input_normalize.items()}
        transform = self.build_transform(image_size)
        if not hasattr(transform, "transforms") and not hasattr(transform, "transform"):
            raise ValueError(
                f"cannot read the normalisation of {type(transform).__name__}: set "
                f"`input_normalize` on {type(self).__name__} (and use it in build_transform)"
            )
        stats = {(tuple(op.mean), tuple(op.std)) for op in _ops_named(transform, "Normalize")}
        if len(stats) > 1:
            raise ValueError(
                f"{type(self).__name__}'s views normalise differently ({sorted(stats)}): set "
                f"`input_normalize` to the statistics evaluation should use"
            )
        mean, std = stats.pop() if stats else ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        return {"mean": [float(x) for x in mean], "std": [float(x) for x in std]}

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        """The loss of each image of the batch, shape ``(batch,)``; its mean is the training
        loss. Re-weighting variants (rwSAM) need it; implement it rather than
        `training_loss` where the loss allows."""
        raise NotImplementedError(f"{type(self).__name__} does not give per-example losses")

    def training_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        """The loss of one batch of views (labels are given but unused by SSL methods)."""
        return self.per_example_loss(views, targets).mean()

    @classmethod
    def has_per_example_loss(cls) -> bool:
        return cls.per_example_loss is not Method.per_example_loss

    def before_step(self) -> None:
        """Once per optimisation step, before the loss: momentum (EMA) teacher updates,
        prototype normalisation. `self.step`, `self.total_steps` and `self.epoch` are current.
        State that the loss itself advances (memory banks, centres) must live in buffers: the
        rwSAM step restores buffers so that it advances once per step."""

    def frozen_parameters(self) -> list[nn.Parameter]:
        """Parameters this step must not update (e.g. SwAV's prototypes in its first epoch):
        the harness drops their gradients before the optimiser step, so they stay as they are
        (no weight decay, no momentum), as with ``requires_grad=False``; but they stay in the
        graph, which DDP needs (it expects the same parameters to get gradients every step)."""
        return []

    def begin_step(self, step: int, total_steps: int, epoch: int) -> None:
        """Called by the harness (or a variant's wrapper) before every optimisation step."""
        self.step, self.total_steps, self.epoch = step, max(1, total_steps), epoch
        self.before_step()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        begin_step_of(self, self)

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def training_step(self, batch: tuple[list[Tensor], Tensor, Tensor], batch_idx: int) -> Tensor:
        views, targets, _ = batch  # the third item: the images' indices in the subset
        loss = self.training_loss(views, targets)
        self.log("train_loss", loss, on_step=True, on_epoch=True, batch_size=len(targets))
        return loss

    def configure_optimizers(self) -> Any:
        return sgd_cosine(self.parameters(), self.train_cfg, self.trainer.max_epochs)


def _ops_named(transform: Any, name: str, depth: int = 0) -> list[Any]:
    """The ops of type `name` inside a (multi-view) transform: torchvision Compose and
    Lightly's view wrappers, read through their ``transforms``/``transform`` attributes."""
    if type(transform).__name__ == name:
        return [transform]
    found: list[Any] = []
    for attr in ("transforms", "transform"):
        inner = getattr(transform, attr, None)
        items = inner if isinstance(inner, list | tuple) else [inner]
        for item in items:
            if item is not None and item is not transform and depth < 8:
                found += _ops_named(item, name, depth + 1)
    return found


def begin_step_of(method: Method, module: pl.LightningModule) -> None:
    """`method.begin_step` with the progress of the Trainer that fits `module` (the method
    itself, or a variant's wrapper around it)."""
    trainer = module.trainer
    total = trainer.estimated_stepping_batches
    method.begin_step(
        int(trainer.global_step),
        int(total) if total != float("inf") else 1,
        int(trainer.current_epoch),
    )


def frozen_parameters_of(module: nn.Module) -> list[nn.Parameter]:
    """The `Method.frozen_parameters` of every method inside `module` (itself included)."""
    return [p for m in module.modules() if isinstance(m, Method) for p in m.frozen_parameters()]


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters this step updates: those that require gradients, less the frozen ones."""
    frozen = {id(p) for p in frozen_parameters_of(module)}
    return [p for p in module.parameters() if p.requires_grad and id(p) not in frozen]


def sgd_cosine(params: Iterable[nn.Parameter], cfg: TrainConfig, epochs: int | None) -> Any:
    """SGD with momentum and weight decay, cosine-annealed over the epochs (per epoch)."""
    if cfg.lr is None:
        raise ValueError("train.lr must be resolved before training (see resolve_config)")
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs or 1))
    return [optimizer], [scheduler]
