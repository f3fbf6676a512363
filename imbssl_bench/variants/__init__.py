"""Variants wrap the pre-training of any method (``base`` = plain training).

A variant receives the built method and the imbalanced subset and returns the backbone to
evaluate, the training stats and any diagnostics for the record. Remedies (cluster-distill,
rwSAM, ...) register here and work with every method plugin; their hyperparameters are an
``Args`` dataclass, stored resolved in the record as ``variant_args``.
"""

from __future__ import annotations

# register the built-ins (plain imports: `from .cluster_distill import cluster_distill` would
# rebind this package's `cluster_distill`, the room, to the module inside it)
import imbssl_bench.variants.cluster_distill.cluster_distill
import imbssl_bench.variants.sam.rwsam  # noqa: F401
from imbssl_bench.variants import base, matched  # noqa: F401
from imbssl_bench.variants.api import (
    VARIANTS,
    PretrainContext,
    PretrainResult,
    Variant,
    train_base,
)


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
