"""MoCo v2 (Chen et al., arXiv 2003.04297) from Lightly's parts, with a symmetric loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import MoCoProjectionHead
from lightly.transforms import MoCoV2Transform
from PIL import Image
from torch import Tensor, nn

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method
from imbssl_bench.methods.momentum import MomentumTeacher, momentum_copy


@dataclass(frozen=True)
class MoCoArgs:
    hidden_dim: int = 512  # Lightly's CIFAR-10 benchmark
    out_dim: int = 128
    temperature: float = 0.1
    memory_bank_size: int = 4096  # negatives kept from earlier batches (65,536 on ImageNet)
    momentum: float = 0.99  # start of the cosine schedule to 1 (0.999 in the paper)
    min_scale: float = 0.2
    gaussian_blur: float = 0.0  # no blur on 32 px images

    def __post_init__(self) -> None:
        check_range(self, "(0, inf)", "hidden_dim", "out_dim", "temperature", "memory_bank_size")
        check_range(self, "[0, 1)", "momentum")
        check_range(self, "(0, 1]", "min_scale")
        check_range(self, "[0, 1]", "gaussian_blur")


class MoCo(MomentumTeacher, Method):
    name = "moco"
    description = "MoCo v2: InfoNCE against a momentum key encoder and a queue (Chen et al. 2020)"
    Args = MoCoArgs

    def build(self) -> None:
        a: MoCoArgs = self.args
        self.projection_head = MoCoProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)
        self.backbone_momentum = momentum_copy(self.backbone)
        self.projection_head_momentum = momentum_copy(self.projection_head)
        self.criterion = NTXentLoss(  # under DDP the queue takes every process's keys
            a.temperature, memory_bank_size=(a.memory_bank_size, a.out_dim), gather_distributed=True
        )
        self.criterion.cross_entropy = nn.CrossEntropyLoss(reduction="none")  # per query row

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: MoCoArgs = self.args
        return MoCoV2Transform(
            input_size=image_size, min_scale=a.min_scale, gaussian_blur=a.gaussian_blur
        )

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        q0, q1 = (self.projection_head(self.backbone(v)) for v in views)
        with torch.no_grad():
            k0, k1 = (self.projection_head_momentum(self.backbone_momentum(v)) for v in views)
        # both directions in one call: the queue is read before this batch's keys join it
        return self.criterion(torch.cat([q0, q1]), torch.cat([k1, k0])).view(2, -1).mean(0)
