"""SwAV (Caron et al., NeurIPS 2020, arXiv 2006.09882) from Lightly's parts.

The codes come from Lightly's `sinkhorn`; the swapped prediction's cross-entropy is written per
image (a test checks that its mean equals `SwaVLoss`). No queue: batches of 128+ images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lightly.loss.swav_loss import sinkhorn
from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes
from lightly.transforms import SwaVTransform
from PIL import Image
from torch import Tensor, nn

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method


@dataclass(frozen=True)
class SwaVArgs:
    hidden_dim: int = 512  # Lightly's CIFAR-10 benchmark
    out_dim: int = 128
    prototypes: int = 512  # 3,000 in the paper (ImageNet)
    temperature: float = 0.1
    sinkhorn_iterations: int = 3
    sinkhorn_epsilon: float = 0.05
    freeze_prototypes_epochs: int = 1  # as in the paper
    local_views: int = 0  # multi-crop: extra small views (6 in the paper)
    local_crop_size: int = 16  # pixels, used when local_views > 0
    cj_strength: float = 0.5
    gaussian_blur: float = 0.0  # no blur on 32 px images

    def __post_init__(self) -> None:
        check_range(self, "(0, inf)", "hidden_dim", "out_dim", "prototypes", "temperature")
        check_range(self, "(0, inf)", "sinkhorn_epsilon", "local_crop_size")
        check_range(self, "[0, inf)", "sinkhorn_iterations", "freeze_prototypes_epochs")
        check_range(self, "[0, inf)", "local_views", "cj_strength")
        check_range(self, "[0, 1]", "gaussian_blur")


class SwaV(Method):
    name = "swav"
    description = "SwAV: swapped prediction of Sinkhorn cluster codes between views (Caron 2020)"
    Args = SwaVArgs

    def build(self) -> None:
        a: SwaVArgs = self.args
        self.projection_head = SwaVProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)
        self.prototypes = SwaVPrototypes(a.out_dim, a.prototypes)

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: SwaVArgs = self.args
        local = a.local_views > 0
        return SwaVTransform(
            crop_sizes=(image_size, a.local_crop_size) if local else (image_size,),
            crop_counts=(2, a.local_views) if local else (2,),
            crop_min_scales=(0.14, 0.05) if local else (0.14,),
            crop_max_scales=(1.0, 0.14) if local else (1.0,),
            cj_strength=a.cj_strength,
            gaussian_blur=a.gaussian_blur,
        )

    def before_step(self) -> None:
        self.prototypes.normalize()

    def frozen_parameters(self) -> list[nn.Parameter]:
        """The prototypes during the first epochs (Lightly's `n_steps_frozen_prototypes`,
        counted in epochs, without its ``requires_grad`` toggle that DDP rejects)."""
        frozen = self.epoch < self.args.freeze_prototypes_epochs
        return list(self.prototypes.parameters()) if frozen else []

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        a: SwaVArgs = self.args
        scores = [
            self.prototypes(F.normalize(self.projection_head(self.backbone(v)), dim=1))
            for v in views
        ]
        log_p = [F.log_softmax(s / a.temperature, dim=1) for s in scores]
        rows = scores[0].new_zeros(len(scores[0]))
        for i in range(2):  # codes of the two full-size views
            with torch.no_grad():
                q = sinkhorn(
                    scores[i].detach(),
                    a.sinkhorn_iterations,
                    a.sinkhorn_epsilon,
                    gather_distributed=True,  # codes balanced over the global batch
                )
            swapped = [-(q * lp).sum(dim=1) for v, lp in enumerate(log_p) if v != i]
            rows = rows + torch.stack(swapped).sum(0) / (len(views) - 1)
        return rows / 2
