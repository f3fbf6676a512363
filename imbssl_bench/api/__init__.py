"""The public API for plugin authors: everything a method, variant (remedy or control) or
backbone plugin needs, and all that the built-in variants use (an import-linter contract in
the suite holds them to it). docs/plugins.md walks through it with two complete examples.

Versioned by `API_VERSION` (major.minor): a change that breaks code written against it is a
new major version; additions are minor. Anything not listed in ``__all__`` may move.

Methods (register a `Method` subclass under the ``imbssl_bench.methods`` entry points):
    `Method`, `NoArgs`, `LrRule` (a method's default learning rate), `TrainConfig`,
    `sgd_cosine` (the default optimiser), `trainable_parameters`.
Variants (register a `Variant` under ``imbssl_bench.variants``):
    `Variant`, `PretrainContext` (with ``fit_stage``, ``features``, ``seed``, ``rng``),
    `PretrainResult`, `train_base` -> `BaseTraining`, `TrainStats`, `Compute`,
    `stage_compute`, `total_compute`, `MethodWrapper` (a LightningModule that changes how a
    method learns), `PerImageLoss`, `SamplerWeights`, `ImageViews` (per-image views),
    `EpochLosses` (each epoch's mean
    loss), `even_batch_count` (batches per epoch without drop_last), `from_rank_zero`
    (results that every process must share).
Both: `RunConfig` (the resolved, frozen config a run gets), `Split` (images and
    ``.targets``), `check_range` (option checks), `UserError` (a one-line error, no
    traceback).
Backbones: register a timm model (``timm.models.register_model``) in a module named by an
    ``imbssl_bench.backbones`` entry point; nothing from here is needed.

Built-in methods import the same objects from their homes (`imbssl_bench.methods.base`,
`imbssl_bench.config`): methods sit below the training room, which trains them.
"""

from __future__ import annotations

from imbssl_bench.api.compute import Compute, stage_compute, total_compute
from imbssl_bench.api.context import BaseTraining, PretrainContext, train_base
from imbssl_bench.api.image_loss import PerImageLoss
from imbssl_bench.api.variant import PretrainResult, Variant
from imbssl_bench.api.wrapping import MethodWrapper
from imbssl_bench.config import LrRule, RunConfig, TrainConfig, check_range
from imbssl_bench.data import Split
from imbssl_bench.errors import UserError
from imbssl_bench.methods.base import Method, NoArgs, sgd_cosine, trainable_parameters
from imbssl_bench.training.callbacks import EpochLosses
from imbssl_bench.training.distributed import from_rank_zero
from imbssl_bench.training.draws import SamplerWeights
from imbssl_bench.training.image_views import ImageViews
from imbssl_bench.training.loaders import even_batch_count
from imbssl_bench.training.trainer import TrainStats

API_VERSION = "1.0"

__all__ = [
    "API_VERSION",
    "BaseTraining",
    "Compute",
    "EpochLosses",
    "ImageViews",
    "LrRule",
    "Method",
    "MethodWrapper",
    "NoArgs",
    "PerImageLoss",
    "PretrainContext",
    "PretrainResult",
    "RunConfig",
    "SamplerWeights",
    "Split",
    "TrainConfig",
    "TrainStats",
    "UserError",
    "Variant",
    "check_range",
    "even_batch_count",
    "from_rank_zero",
    "sgd_cosine",
    "stage_compute",
    "total_compute",
    "train_base",
    "trainable_parameters",
]
