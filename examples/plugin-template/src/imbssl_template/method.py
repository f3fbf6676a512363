"""Alignment + uniformity on the hypersphere (Wang & Isola, ICML 2020, arXiv 2005.10242)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lightly.models.modules import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform
from PIL import Image
from torch import Tensor

from imbssl_bench.api import Method


@dataclass(frozen=True)
class AlignUniformArgs:
    """Hyperparameters: `--method-arg` / config `[method_args]` set them; every record stores
    them resolved."""

    out_dim: int = 128
    hidden_dim: int = 512
    alpha: float = 2.0  # alignment exponent
    t: float = 2.0  # uniformity temperature
    uniform_weight: float = 1.0
    min_scale: float = 0.08
    cj_strength: float = 0.5


def uniformity_rows(z: Tensor, t: float) -> Tensor:
    """Per image: log of the mean Gaussian potential to the other images of the batch (the
    per-image form of the paper's uniformity, which takes the log of the mean over all pairs).
    `z` is L2-normalised, so the squared distances are 2 - 2 z z^T."""
    sq = (2 - 2 * z @ z.T).clamp_min(0)
    off = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    return torch.logsumexp((-t * sq)[off].view(len(z), -1), dim=1) - torch.log(
        torch.tensor(len(z) - 1.0, device=z.device)
    )


class AlignUniform(Method):
    name = "align-uniform"  # must equal the entry point's name
    description = "template plugin: alignment + uniformity on the hypersphere (Wang & Isola 2020)"
    Args = AlignUniformArgs

    def build(self) -> None:
        a: AlignUniformArgs = self.args
        self.projection_head = SimCLRProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        a: AlignUniformArgs = self.args
        return SimCLRTransform(
            input_size=image_size,
            min_scale=a.min_scale,
            cj_strength=a.cj_strength,
            gaussian_blur=0.0,
        )

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        a: AlignUniformArgs = self.args
        z0, z1 = (F.normalize(self.projection_head(self.backbone(v)), dim=1) for v in views)
        align = (z0 - z1).norm(dim=1).pow(a.alpha)
        uniform = 0.5 * (uniformity_rows(z0, a.t) + uniformity_rows(z1, a.t))
        return align + a.uniform_weight * uniform
