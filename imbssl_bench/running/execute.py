"""Execute one planned run: load its subset, pre-train it with its variant, evaluate the frozen
backbone and write its record (``failed``, with the error, when it raises)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.utilities.rank_zero import rank_zero_only

from imbssl_bench.api import PretrainContext, PretrainResult
from imbssl_bench.api.compute import compute_section
from imbssl_bench.config import RunConfig
from imbssl_bench.data import (
    DatasetSource,
    Split,
    class_ranks,
    holdout_split,
    open_dataset,
    probe_subset,
    subset_indices,
)
from imbssl_bench.data.splitfile import read_split_file
from imbssl_bench.envinfo import collect_env, peak_memory, reset_peak_memory
from imbssl_bench.errors import UserError
from imbssl_bench.evaluation.features import feature_device
from imbssl_bench.evaluation.monitor import MonitorData, StageCurves, curve_metrics
from imbssl_bench.evaluation.protocol import evaluate
from imbssl_bench.evaluation.transfer import planned_targets, transfer_section
from imbssl_bench.methods import Method, create_method
from imbssl_bench.methods.backbones import create_backbone
from imbssl_bench.progress import NullReporter, Reporter
from imbssl_bench.running.plan import PlannedRun
from imbssl_bench.running.records import SCHEMA, write_record
from imbssl_bench.training.checkpoints import CHECKPOINTS, discard
from imbssl_bench.training.logs import LOGS, RunLogging
from imbssl_bench.training.trainer import StageObservers
from imbssl_bench.training.weights import kept_weights_section
from imbssl_bench.variants import get_variant


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record_head(run: PlannedRun, source: DatasetSource) -> dict[str, Any]:
    c = run.config
    n_pool = len(source.train_targets()) - c.data.val_per_class * len(source.classes)
    n_probe = c.eval.probe_per_class * len(source.classes) if c.eval.probe_per_class else n_pool
    return {
        "schema": SCHEMA,
        "run_id": run.run_id,
        "method": c.method,
        "variant": c.variant,
        "dataset": c.data.dataset,
        "dataset_display": c.data.label or source.display_name or c.data.dataset,
        "profile": c.imbalance.profile,
        "ratio": c.imbalance.ratio,
        "seed": c.seed,
        "class_names": source.classes,
        "class_counts": run.class_counts,
        "n_train": run.n_train,
        "n_pool": n_pool,
        "n_probe": n_probe,
        "config": c.to_dict(),
        "config_hash": c.config_hash(),
    }


def execute(run: PlannedRun, reporter: Reporter | None = None) -> dict[str, Any] | None:
    """Pre-train and evaluate one run; returns its ``ok`` record (exceptions propagate).
    Under DDP every rank pre-trains; only rank 0 evaluates and returns the record."""
    reporter = reporter or NullReporter()
    cfg = run.config
    started, t0 = _now(), time.perf_counter()
    reset_peak_memory()
    reporter.stage("loading data")
    source = open_dataset(cfg)
    data = run_data(run, source)
    targets = planned_targets(cfg)
    t_data = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    image_size = cfg.data.image_size or source.image_size

    result, normalize, monitors, stages = _pretrain(run, source, data, image_size, reporter)
    t_train = time.perf_counter()
    if rank_zero_only.rank != 0:  # the other DDP processes are done
        return None
    device = feature_device(cfg.runtime.accelerator)
    metrics = evaluate(
        result.backbone,
        data.pool,
        data.test,
        run.class_counts,
        class_ranks(len(source.classes), cfg.imbalance.class_order, cfg.seed),
        cfg.eval,
        image_size,
        device,
        cfg.seed,
        reporter.stage,
        val=data.val,
        normalize=normalize,
        workers=cfg.runtime.num_workers,
    )
    metrics.update(curve_metrics(monitors))
    if targets:
        metrics["transfer"] = transfer_section(
            result.backbone, targets, cfg, image_size, device, normalize, reporter.stage
        )
    t_end = time.perf_counter()
    earlier = round(result.compute.earlier_wall_s, 3) if result.compute else 0.0
    return {
        **_record_head(run, source),
        "status": "ok",
        "error": None,
        "metrics": metrics,
        "train": result.train,
        "compute": compute_section(result.compute, result.train, cfg, run.n_train, stages),
        "diagnostics": result.diagnostics,
        "storage": data.storage,
        "timing": {
            "data_s": round(t_data - t0, 3),
            "pretrain_s": round(t_train - t_data, 3),
            "eval_s": round(t_end - t_train, 3),
            "earlier_processes_s": earlier,  # pre-training before a resume, from checkpoints
        },
        "memory": peak_memory(),
        "wall_s": round(t_end - t0 + earlier, 3),
        "started_at": started,
        "finished_at": _now(),
        "env": collect_env(device, cfg.plugins),
        **kept_weights(run),
    }


def kept_weights(run: PlannedRun) -> dict[str, Any]:
    """A `base` run that kept its weights for the grid's other variants names them (their
    sha256): they are valid while this record is (training/weights.py)."""
    path = run.base_weights
    if run.config.variant != "base" or path is None or not path.is_file():
        return {}
    return {"kept_weights": kept_weights_section(path)}


def _pretrain(
    run: PlannedRun, source: DatasetSource, data: RunData, image_size: int, reporter: Reporter
) -> tuple[PretrainResult, dict[str, list[float]], dict[str, StageCurves], list[dict[str, Any]]]:
    """Build the method and let the run's variant pre-train it; returns the variant's result,
    the input normalisation (evaluation sees inputs as training did), the stage monitors and
    the stages it trained or reused."""
    cfg = run.config

    def make_method() -> Method:
        backbone, dim = create_backbone(cfg.model.backbone, cfg.model.stem, image_size=image_size)
        return create_method(
            cfg.method, backbone, dim, cfg.method_args, cfg.train, len(source.classes)
        )

    method = make_method()
    normalize = method.input_normalization(image_size)
    monitors: dict[str, StageCurves] = {}
    observe = observers(run, data, len(source.classes), image_size, normalize, monitors)
    context = PretrainContext(
        cfg,
        method,
        data.subset,
        image_size,
        reporter,
        make_method,
        run.base_weights,
        checkpoint_dir(run),
        run.matched_to,
        observe,
    )
    result = get_variant(cfg.variant).pretrain(context)
    return result, normalize, monitors, context.stages


def observers(
    run: PlannedRun,
    data: RunData,
    num_classes: int,
    image_size: int,
    normalize: dict[str, list[float]],
    monitors: dict[str, StageCurves],
) -> Callable[[str, bool], StageObservers]:
    """What watches each training stage of `run`: its loggers (``<out>/logs/<run_id>/``) and
    its curves (kept in `monitors` by stage): the loss per epoch and, unless
    ``--monitor-every 0``, the online kNN."""
    cfg = run.config
    kind = cfg.runtime.logger
    logging = None if kind == "none" else RunLogging(kind, log_dir(run), run.run_id)
    every = cfg.runtime.monitor_every
    monitor = None
    if every != 0:
        monitor = MonitorData.of(data.pool, data.test, num_classes, image_size, normalize=normalize)

    def observe(stage: str, monitored: bool) -> StageObservers:
        if not monitored:
            return StageObservers(stage, logging)
        monitors[stage] = StageCurves(monitor, every)  # the loss curve even without the kNN
        return StageObservers(stage, logging, (monitors[stage],))

    return observe


@dataclass(frozen=True)
class RunData:
    """What one run trains on and is evaluated on."""

    storage: str  # memory | streaming
    subset: Split  # the training subset
    pool: Split  # the balanced pool the probes fit on
    test: Split
    val: Split | None  # the validation split the linear probe's C is chosen on


def run_data(run: PlannedRun, source: DatasetSource) -> RunData:
    """The run's splits, from the data its run id names, in memory or streamed."""
    cfg = run.config
    check_same_data(cfg, source)
    storage = source.choose_storage(cfg.runtime.streaming)
    if storage == "streaming" and cfg.train.augment == "batched":
        raise UserError(
            f"the {cfg.data.dataset} images stream from disk (they are not squares of one size "
            "or exceed the RAM budget), and --augment batched needs them in memory: pass "
            "--augment pil"
        )
    data = source.load(storage)
    targets = source.train_targets()
    pool_idx, val_idx = holdout_split(targets, cfg.data.val_per_class)
    probe_idx = pool_idx[probe_subset(targets[pool_idx], cfg.eval.probe_per_class)]
    pool = data.train.subset(probe_idx) if len(probe_idx) < len(targets) else data.train
    val = data.val if data.val is not None else data.train.subset(val_idx) if len(val_idx) else None
    subset = data.train.subset(training_indices(run, source))
    return RunData(storage, subset, pool, data.test, val)


def training_indices(run: PlannedRun, source: DatasetSource) -> Any:
    """The run's training subset as indices into the train split: the --split-file's (its
    content checked against the planned hash), else drawn with the run's seed."""
    cfg = run.config
    if cfg.data.split_hash is None:
        targets = source.train_targets()
        return subset_indices(targets, run.class_counts, cfg.seed, cfg.data.val_per_class)
    split = read_split_file(cfg.runtime.split_file or "", source)
    if split.hash != cfg.data.split_hash:
        raise UserError(
            f"--split-file '{cfg.runtime.split_file}' changed since the grid was planned "
            f"(hash {split.hash}, planned {cfg.data.split_hash}); run the command again"
        )
    return split.indices


def check_same_data(cfg: RunConfig, source: DatasetSource) -> None:
    """The data a run trains on is the data its run id names: it may have changed between
    planning and execution (a long grid, a slurm queue)."""
    found = source.fingerprint() or None
    if cfg.data.fingerprint is not None and found != cfg.data.fingerprint:
        raise UserError(
            f"the {cfg.data.dataset} data at '{cfg.runtime.data_root}' changed since the grid "
            f"was planned (fingerprint {found}, planned {cfg.data.fingerprint}); run the "
            "command again to plan it on the data as it is now"
        )


def failed_record(run: PlannedRun, exc: BaseException, wall_s: float) -> dict[str, Any]:
    source = open_dataset(run.config)
    return {
        **_record_head(run, source),
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
        "metrics": {},
        "wall_s": round(wall_s, 3),
        "finished_at": _now(),
        "env": collect_env(feature_device(run.config.runtime.accelerator), run.config.plugins),
    }


def log_dir(run: PlannedRun) -> Path:
    """The run's training logs (``metrics.csv``, TensorBoard or W&B files), beside its record."""
    return run.path.parent / LOGS / run.run_id


def checkpoint_dir(run: PlannedRun) -> Path:
    """The run's epoch checkpoints (one folder per training stage), beside its record."""
    return run.path.parent / CHECKPOINTS / run.run_id


def run_here(
    run: PlannedRun, reporter: Reporter, record_user_errors: bool = False
) -> dict[str, Any] | None:
    """Execute `run` in this process and write its record (``failed`` if it raised; a
    `UserError` stops the grid unless `record_user_errors`, as in a worker process). An ``ok``
    record deletes the run's checkpoints; a failed run keeps them for ``--retry-failed``. Under
    DDP only rank 0 writes and returns the record; the other ranks return None."""
    t0 = time.perf_counter()
    try:
        record = execute(run, reporter)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a broken run must not stop the grid
        if (isinstance(exc, UserError) and not record_user_errors) or rank_zero_only.rank != 0:
            raise
        record = failed_record(run, exc, time.perf_counter() - t0)
    if record is None:
        return None
    write_record(run.path, record)
    discard(checkpoint_dir(run), everything=record["status"] == "ok")  # failed: resumable
    return record
