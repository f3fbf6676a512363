"""Distilling per-cluster experts into one student (the last stage of Chang & Chang,
arXiv 2212.11444, as this harness builds it).

For every image, the student's backbone feature of a view, through the adapter of the image's
cluster, is pulled (cosine) to the frozen feature of the same view from that cluster's expert.
The student keeps training with its own SSL loss: loss = SSL + weight * distillation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbssl_bench.api import Method, MethodWrapper


class ClusterAdapters(nn.Module):
    """One linear map per cluster, initialised to the identity."""

    def __init__(self, clusters: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(dim).repeat(clusters, 1, 1))
        self.bias = nn.Parameter(torch.zeros(clusters, dim))

    def forward(self, x: Tensor, cluster: Tensor) -> Tensor:
        ids = cluster.unique().tolist()
        rows = [torch.nonzero(cluster == k).squeeze(1) for k in ids]
        parts = [
            F.linear(x[r], self.weight[k], self.bias[k]) for r, k in zip(rows, ids, strict=True)
        ]
        return torch.cat(parts)[torch.argsort(torch.cat(rows))]  # rows' order; autocast-safe


@torch.no_grad()
def expert_features(experts: Sequence[nn.Module], x: Tensor, cluster: Tensor) -> Tensor:
    """Each row of `x` through the (frozen) expert of its cluster."""
    parts = {k: experts[k](x[cluster == k]) for k in cluster.unique().tolist()}
    first = next(iter(parts.values()))
    out = first.new_empty(len(x), first.shape[1])
    for k, feats in parts.items():
        out[cluster == k] = feats
    return out


def distill_loss(
    student: Tensor, expert: Tensor, cluster: Tensor, adapters: ClusterAdapters
) -> Tensor:
    """1 - cosine(adapter_c(student feature), expert feature), averaged over the rows."""
    return 1 - F.cosine_similarity(adapters(student, cluster), expert, dim=-1).mean()


class DistillStudent(MethodWrapper):
    """Trains `student` (a `Method`) with its SSL loss plus the distillation term.

    The student's backbone calls inside `Method.training_loss` are captured with a forward
    hook, so the same views the SSL loss sees are distilled, for any method plugin.
    """

    def __init__(
        self,
        student: Method,
        experts: Sequence[nn.Module],
        cluster_ids: Tensor,
        weight: float,
    ) -> None:
        super().__init__()
        self.student = student
        self.experts = nn.ModuleList(experts).requires_grad_(False)
        self.adapters = ClusterAdapters(len(experts), student.feature_dim)
        self.register_buffer("cluster_ids", cluster_ids.long(), persistent=False)
        self.weight = weight
        self.experts.eval()

    def on_train_start(self) -> None:
        self.experts.eval()  # Lightning does not reset modes at fit start

    def train(self, mode: bool = True) -> DistillStudent:
        super().train(mode)
        self.experts.eval()  # frozen teachers: batch-norm running statistics, no updates
        return self

    @property
    def wrapped(self) -> Method:
        return self.student

    def training_step(self, batch: tuple[list[Tensor], Tensor, Tensor], batch_idx: int) -> Tensor:
        views, targets, index = batch
        seen: list[tuple[Tensor, Tensor]] = []
        hook = self.student.backbone.register_forward_hook(
            lambda _m, inputs, output: seen.append((inputs[0], output))
        )
        try:
            ssl = self.student.training_loss(views, targets)
        finally:
            hook.remove()
        clusters = self.cluster_ids[index]
        terms = []
        for x, feats in seen:  # one call per view, or one call on the concatenated views
            if len(x) % len(index):
                continue
            c = clusters.repeat(len(x) // len(index))
            terms.append(distill_loss(feats, expert_features(self.experts, x, c), c, self.adapters))
        distill = torch.stack(terms).mean() if terms else ssl.new_zeros(())
        loss = ssl + self.weight * distill
        n = len(targets)
        self.log("train_loss", loss, on_step=True, on_epoch=True, batch_size=n)
        self.log("ssl_loss", ssl, on_step=False, on_epoch=True, batch_size=n)
        self.log("distill_loss", distill, on_step=False, on_epoch=True, batch_size=n)
        return loss
