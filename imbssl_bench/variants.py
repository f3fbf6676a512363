"""Variants wrap the pre-training of any method (``base`` = plain training).

A variant receives the built method and the imbalanced subset and returns the backbone to
evaluate, the training stats and any diagnostics for the record. Remedies (rwSAM,
cluster-distill, ...) register here and work with every method plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from imbssl_bench.config import RunConfig
from imbssl_bench.datasets import ImageSplit
from imbssl_bench.methods import Method
from imbssl_bench.progress import Reporter
from imbssl_bench.registry import Registry
from imbssl_bench.training import fit


@dataclass
class PretrainContext:
    config: RunConfig
    method: Method
    subset: ImageSplit
    image_size: int
    reporter: Reporter


@dataclass
class PretrainResult:
    backbone: nn.Module
    train: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    pretrain: Callable[[PretrainContext], PretrainResult]


VARIANTS: Registry[Variant] = Registry("variant")


def _base(ctx: PretrainContext) -> PretrainResult:
    if not ctx.method.trains:
        return PretrainResult(ctx.method.backbone, {"epochs": 0, "steps": 0})
    stats = fit(ctx.method, ctx.subset, ctx.config, ctx.image_size, ctx.reporter)
    return PretrainResult(ctx.method.backbone, asdict(stats))


VARIANTS.add("base", Variant("base", "plain pre-training of the method on the subset", _base))


def list_variants() -> list[Variant]:
    return [v for _, v in VARIANTS.items()]
