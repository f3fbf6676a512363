"""BYOL (Grill et al., NeurIPS 2020, arXiv 2006.07733) from Lightly's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.transforms import BYOLTransform, BYOLView1Transform, BYOLView2Transform
from PIL import Image
from torch import Tensor

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method
from imbssl_bench.methods.momentum import MomentumTeacher, momentum_copy


@dataclass(frozen=True)
class BYOLArgs:
    hidden_dim: int = 1024  # Lightly's CIFAR-10 benchmark (4096 in the paper, ImageNet)
    out_dim: int = 256
    momentum: float = 0.99  # start of the cosine schedule to 1 (0.996 in the paper: long runs)
    min_scale: float = 0.08
    gaussian_blur: float = 0.0  # no blur on 32 px images

    def __post_init__(self) -> None:
        check_range(self, "(0, inf)", "hidden_dim", "out_dim")
        check_range(self, "[0, 1)", "momentum")
        check_range(self, "(0, 1]", "min_scale")
        check_range(self, "[0, 1]", "gaussian_blur")


class BYOL(MomentumTeacher, Method):
    name = "byol"
    description = "BYOL: predictor regresses a momentum teacher's projection (Grill et al. 2020)"
    Args = BYOLArgs

    def build(self) -> None:
        a: BYOLArgs = self.args
        self.projection_head = BYOLProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)
        self.prediction_head = BYOLPredictionHead(a.out_dim, a.hidden_dim, a.out_dim)
        self.backbone_momentum = momentum_copy(self.backbone)
        self.projection_head_momentum = momentum_copy(self.projection_head)

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: BYOLArgs = self.args
        view = {
            "input_size": image_size,
            "min_scale": a.min_scale,
            "gaussian_blur": a.gaussian_blur,
        }
        return BYOLTransform(BYOLView1Transform(**view), BYOLView2Transform(**view))

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        p0, p1 = (self.prediction_head(self.projection_head(self.backbone(v))) for v in views)
        z0, z1 = (self.projection_head_momentum(self.backbone_momentum(v)).detach() for v in views)
        # Lightly's NegativeCosineSimilarity is the batch mean of this
        return -0.5 * (F.cosine_similarity(p0, z1) + F.cosine_similarity(p1, z0))
