"""The supervised control: cross-entropy pre-training on the same subset, views and backbone.

Labels are used here only. Liu et al. (ICLR 2022) compare the accuracy drop from balanced to
imbalanced pre-training of SSL with this baseline, at the same number of images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor, nn

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method
from imbssl_bench.methods.simclr import SimCLRViewArgs, simclr_views


@dataclass(frozen=True)
class SupervisedArgs(SimCLRViewArgs):  # the same views as SimCLR
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()  # the view options
        check_range(self, "[0, 1)", "label_smoothing")


class Supervised(Method):
    name = "supervised"
    description = "control: cross-entropy on the subset's labels, same views, backbone and probes"
    Args = SupervisedArgs

    def build(self) -> None:
        a: SupervisedArgs = self.args
        self.classifier = nn.Linear(self.feature_dim, self.num_classes)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing, reduction="none")

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        return simclr_views(image_size, self.args)

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        logits = self.classifier(self.backbone(torch.cat(views)))
        return self.criterion(logits, targets.repeat(len(views))).view(len(views), -1).mean(0)
