"""DCL, decoupled contrastive learning (Yeh et al., ECCV 2022, arXiv 2110.06848).

Lightly's `DCLLoss` returns the batch mean; the per-image rows are written here (a test checks
that their mean equals Lightly's loss). Single-process negatives only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lightly.models.modules import SimCLRProjectionHead
from PIL import Image
from torch import Tensor

from imbssl_bench.config import check_range
from imbssl_bench.methods.base import Method
from imbssl_bench.methods.simclr import SimCLRViewArgs, simclr_views


@dataclass(frozen=True)
class DCLArgs(SimCLRViewArgs):  # SimCLR's views
    temperature: float = 0.1  # Lightly's DCLLoss default
    hidden_dim: int = 512
    out_dim: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()  # the view options
        check_range(self, "(0, inf)", "temperature", "hidden_dim", "out_dim")


def dcl_rows(out0: Tensor, out1: Tensor, temperature: float) -> Tensor:
    """DCL loss of each row of `out0`: its positive in `out1`, every other image as negative."""
    out0, out1 = F.normalize(out0, dim=1), F.normalize(out1, dim=1)
    n = len(out0)
    off = ~torch.eye(n, dtype=torch.bool, device=out0.device)
    sim00 = out0 @ out0.T / temperature
    sim01 = out0 @ out1.T / temperature
    negatives = torch.cat([sim00[off].view(n, -1), sim01[off].view(n, -1)], dim=1)
    return torch.logsumexp(negatives, dim=1) - sim01.diagonal()


class DCL(Method):
    name = "dcl"
    description = "DCL: contrastive loss without the positive in the denominator (Yeh et al. 2022)"
    Args = DCLArgs

    def build(self) -> None:
        a: DCLArgs = self.args
        self.projection_head = SimCLRProjectionHead(self.feature_dim, a.hidden_dim, a.out_dim)

    def build_transform(self, image_size: int) -> Callable[[Image.Image], list[Tensor]]:
        return simclr_views(image_size, self.args)

    def per_example_loss(self, views: list[Tensor], targets: Tensor) -> Tensor:
        z0, z1 = (self.projection_head(self.backbone(v)) for v in views)
        t = self.args.temperature
        return 0.5 * (dcl_rows(z0, z1, t) + dcl_rows(z1, z0, t))
