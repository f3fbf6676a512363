"""The data side of a plan: data options that cannot go together, the published subset of a
--split-file, and the --transfer targets in the run's identity."""

from __future__ import annotations

import numpy as np

from imbssl_bench.config import RunConfig, override
from imbssl_bench.data import DatasetSource
from imbssl_bench.data.splitfile import SplitFile, read_split_file
from imbssl_bench.errors import UserError
from imbssl_bench.evaluation.transfer import resolve_targets
from imbssl_bench.running.options import GridSpec


def check_data_options(cfg: RunConfig, source: DatasetSource, spec: GridSpec) -> None:
    """Data options that cannot go together: one-line errors before anything runs."""
    batched = cfg.train.augment == "batched"
    asked = cfg.runtime.streaming is not None  # --streaming / --in-memory: can it be done?
    storage = source.choose_storage(cfg.runtime.streaming) if batched or asked else None
    if batched and storage == "streaming":
        raise UserError(
            "--augment batched makes views from batches held in memory, and these images "
            "stream from disk (--streaming, mixed sizes, or over the RAM budget): use "
            "--augment pil (the views are made per image in the DataLoader workers)"
        )
    if source.has_val and cfg.data.val_per_class:
        raise UserError(
            "the dataset has its own validation split (--val-list); drop --val-per-class"
        )
    if cfg.runtime.split_file and (spec.same_size or spec.total or len(spec.ratios) > 1):
        raise UserError(
            "--split-file fixes the training subset: pass the one ratio it was drawn with "
            "(--ratios R, it labels the runs) and neither --same-size nor --total"
        )
    if cfg.runtime.split_file and cfg.data.classes:
        raise UserError("--split-file indexes the whole dataset; drop --classes")
    drawn = (spec.profile, spec.pareto_shape, spec.n_max, spec.class_order)
    if cfg.runtime.split_file and any(v is not None for v in drawn):
        raise UserError(
            "--split-file fixes the training subset: drop --profile, --pareto-shape, --n-max "
            "and --class-order (they shape a drawn subset)"
        )


def with_transfer(cfg: RunConfig, texts: tuple[str, ...]) -> RunConfig:
    """`cfg` with its --transfer targets: their keys and fingerprints in ``eval.transfer``
    (the run's identity), the targets as given (with their roots) in ``runtime.transfer``."""
    if not texts:
        return cfg
    targets = resolve_targets(texts)
    fingerprints = {k: t.open().fingerprint() or None for k, t in targets.items()}
    return override(
        cfg,
        eval=override(cfg.eval, transfer=fingerprints),
        runtime=override(cfg.runtime, transfer=tuple(texts)),
    )


def published_split(
    cfg: RunConfig, source: DatasetSource, val_idx: np.ndarray, ratio: float
) -> SplitFile | None:
    """The --split-file's subset (None without one); it must leave the validation split out,
    and its largest over smallest class must be the ratio it is labelled with (within 5%: a
    file read in another dataset's order shows here)."""
    if not cfg.runtime.split_file:
        return None
    split = read_split_file(cfg.runtime.split_file, source)
    counts = [n for n in split.counts(source.train_targets(), len(source.classes)) if n]
    actual = max(counts) / min(counts)
    if abs(actual / ratio - 1) > 0.05:
        raise UserError(
            f"--split-file '{cfg.runtime.split_file}' has {max(counts)} to {min(counts)} images "
            f"per class (ratio {actual:.3g}), not --ratios {ratio:g}; pass "
            f"--ratios {actual:.3g}, or check that its indices follow this dataset's order"
        )
    overlap = np.intersect1d(split.indices, val_idx)
    if len(overlap):
        raise UserError(
            f"--split-file lists {len(overlap)} image(s) of the held-out validation split "
            "(--val-per-class); drop --val-per-class or use a split drawn from the rest"
        )
    return split
