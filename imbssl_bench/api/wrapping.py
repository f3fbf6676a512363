"""The LightningModule a variant trains when it changes how a `Method` learns (rwSAM's steps,
cluster-distill's student): what is not the variant's own goes to the wrapped method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from PIL import Image
from torch import Tensor

from imbssl_bench.methods.base import Method, begin_step_of, sgd_cosine


class MethodWrapper(pl.LightningModule):
    """Delegates the transform, the per-step hooks (e.g. a momentum update) and the optimiser
    (the method's SGD + cosine schedule over every trainable parameter of the wrapper) to the
    wrapped method; a subclass adds its `training_step` and says where the method is
    (`wrapped`: kept under the subclass's own attribute, so checkpoint keys do not change)."""

    @property
    def wrapped(self) -> Method:
        raise NotImplementedError

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        return self.wrapped.build_transform(image_size)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        begin_step_of(self.wrapped, self)  # e.g. a momentum update, once per step

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.wrapped.on_train_batch_end(outputs, batch, batch_idx)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        return sgd_cosine(params, self.wrapped.train_cfg, self.trainer.max_epochs)
