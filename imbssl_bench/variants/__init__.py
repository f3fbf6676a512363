"""Variants wrap the pre-training of any method (``base`` = plain training).

A variant receives the built method and the imbalanced subset and returns the backbone to
evaluate, the training stats and any diagnostics for the record. Remedies (cluster-distill,
rwSAM, ...) register here and work with every method plugin; their hyperparameters are an
``Args`` dataclass, stored resolved in the record as ``variant_args``.
"""

from __future__ import annotations

from imbssl_bench.variants import base, matched  # noqa: F401  (register the built-ins)
from imbssl_bench.variants.api import (
    VARIANTS,
    PretrainContext,
    PretrainResult,
    Variant,
    train_base,
)
from imbssl_bench.variants.cluster_distill import cluster_distill  # noqa: F401  (registers)
from imbssl_bench.variants.sam import rwsam  # noqa: F401  (registers)


def list_variants() -> list[Variant]:
    return [v for _, v in VARIANTS.items()]


__all__ = [
    "VARIANTS",
    "PretrainContext",
    "PretrainResult",
    "Variant",
    "list_variants",
    "train_base",
]
