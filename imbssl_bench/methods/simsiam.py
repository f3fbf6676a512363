"""SimSiam (Chen & He, CVPR 2021, arXiv 2011.10566) from Lightly's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead
from lightly.transforms import SimSiamTransform
from PIL import Image
from torch import Tensor

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method


@dataclass(frozen=True)
class SimSiamArgs:
    proj_dim: int = 2048  # projection hidden and output dim (Liu et al.'s CIFAR setting)
    pred_hidden_dim: int = 512
    gaussian_blur: float = 0.0  # no blur on 32 px images
    min_scale: float = 0.2

    def __post_init__(self) -> None:
        check_range(self, "(0, inf)", "proj_dim", "pred_hidden_dim")
        check_range(self, "(0, 1]", "min_scale")
        check_range(self, "[0, 1]", "gaussian_blur")


class SimSiam(Method):
    name = "simsiam"
    description = "SimSiam: predictor + stop-gradient, negative cosine loss (Chen & He 2021)"
    Args = SimSiamArgs

    def build(self) -> None:
        a: SimSiamArgs = self.args
        self.projection_head = SimSiamProjectionHead(self.feature_dim, a.proj_dim, a.proj_dim)
        self.prediction_head = SimSiamPredictionHead(a.proj_dim, a.pred_hidden_dim, a.proj_dim)

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: SimSiamArgs = self.args
        return SimSiamTransform(
            input_size=image_size, gaussian_blur=a.gaussian_blur, min_scale=a.min_scale
        )

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        z0, z1 = (self.projection_head(self.backbone(v)) for v in views)
        p0, p1 = self.prediction_head(z0), self.prediction_head(z1)
        # NegativeCosineSimilarity is the batch mean of this
        return -0.5 * (F.cosine_similarity(p0, z1.detach()) + F.cosine_similarity(p1, z0.detach()))
