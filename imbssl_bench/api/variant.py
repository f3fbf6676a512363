"""A variant (a remedy or a control): how it pre-trains (`Variant.pretrain`) and what it gives
back (`PretrainResult`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from imbssl_bench.api.compute import Compute
from imbssl_bench.config import RunConfig, make_args
from imbssl_bench.methods.base import NoArgs

if TYPE_CHECKING:
    from imbssl_bench.api.context import PretrainContext


@dataclass
class PretrainResult:
    """What `Variant.pretrain` returns: the `backbone` to evaluate, the record's ``train``
    section (`TrainStats.as_record` of the stage whose model is evaluated, or your own dict),
    ``diagnostics`` (anything JSON), and what all stages spent (`compute`; None: untrained if
    ``train`` says 0 steps, else not stated, and the record says null)."""

    backbone: nn.Module
    train: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    compute: Compute | None = None


@dataclass(frozen=True)
class Variant:
    """A variant plugin: register an instance under the ``imbssl_bench.variants`` entry points.

    `Args`: a frozen dataclass of options (``--variant-arg key=value``), checked in
    ``__post_init__`` (`check_range`, `UserError`); `resolve` fills defaults that depend on the
    run, ``(args, config, number of classes) -> args``, at planning; `cost`, ``(resolved
    options as a dict, config) -> passes relative to plain base``, is what `matched` trains;
    `needs_base_weights` (or a callable of the resolved options): the grid runs and keeps
    `base` first and `train_base` reuses it; `needs_per_example_loss`: refuses methods
    without `Method.per_example_loss` at planning; `needs_keyed_draws`: refuses ``--draws
    stream`` at planning (a stage with sampler weights or an `ImageViews` hook needs keyed
    draws)."""

    name: str
    description: str
    pretrain: Callable[[PretrainContext], PretrainResult]
    Args: type = NoArgs
    resolve: Callable[[Any, RunConfig, int], Any] | None = None
    needs_base_weights: bool | Callable[[dict[str, Any]], bool] = False
    needs_training: bool = False  # meaningless for methods that do not train (`random`)
    needs_per_example_loss: bool = False
    needs_keyed_draws: bool = False
    cost: Callable[[dict[str, Any], RunConfig], float] | None = None

    def resolve_args(self, values: dict[str, Any], cfg: RunConfig, num_classes: int) -> dict:
        """The variant's options with every default filled, as the record stores them."""
        args = make_args(self.Args, values, f"variant '{self.name}'")
        return dataclasses.asdict(self.resolve(args, cfg, num_classes) if self.resolve else args)

    def uses_base_weights(self, variant_args: dict[str, Any]) -> bool:
        """Whether a run with these resolved options starts from its config's `base` run."""
        needs = self.needs_base_weights
        return needs(variant_args) if callable(needs) else needs
