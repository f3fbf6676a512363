"""Plan a grid (methods x variants x ratios x seeds), resolve each run's config, run what is
missing, and write one record per run."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from imbssl_bench.backbones import create_backbone, resolve_stem
from imbssl_bench.config import (
    BASE_LR,
    BASE_LR_BATCH,
    DataConfig,
    EvalConfig,
    ImbalanceConfig,
    ModelConfig,
    RunConfig,
    RuntimeConfig,
    TrainConfig,
    override,
)
from imbssl_bench.datasets import DatasetSource, create_dataset
from imbssl_bench.envinfo import collect_env
from imbssl_bench.errors import UserError
from imbssl_bench.evaluation import evaluate
from imbssl_bench.imbalance import (
    class_counts,
    class_ranks,
    holdout_split,
    probe_subset,
    sample_subset,
)
from imbssl_bench.methods import create_method, get_method
from imbssl_bench.presets import PRESETS, default_preset
from imbssl_bench.progress import NullReporter, Reporter
from imbssl_bench.records import SCHEMA, read_record, record_path, write_record
from imbssl_bench.training import check_runtime
from imbssl_bench.variants import VARIANTS, PretrainContext


@dataclass(frozen=True)
class GridSpec:
    """What the user asked for; ``None`` fields fall back to the preset, then the defaults."""

    methods: tuple[str, ...]
    ratios: tuple[float, ...]
    seeds: tuple[int, ...] = (0,)
    variants: tuple[str, ...] = ("base",)
    dataset: str = "digits"
    data_root: str | None = None
    dataset_label: str | None = None  # how tables name the data, e.g. "CIFAR-10 (JPEG)"
    preset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    backbone: str | None = None
    stem: str | None = None
    image_size: int | None = None
    n_max: int | None = None
    class_order: str | None = None
    profile: str | None = None
    same_size: bool | None = None  # same number of images at every ratio (None: iff `total`)
    total: int | None = None  # that number; default: the size of the grid's smallest subset
    val_per_class: int | None = None  # balanced validation split held out of the pool first
    probe_per_class: int | None = None  # probes fit on this many pool images per class
    precision: str | None = None
    accelerator: str | None = None
    devices: int | None = None
    num_workers: int | None = None


@dataclass(frozen=True)
class PlannedRun:
    config: RunConfig  # resolved
    class_counts: list[int]
    path: Path
    status: str  # "todo", or the status of the record already at `path` ("ok" / "failed")

    @property
    def run_id(self) -> str:
        return self.config.run_id()

    @property
    def n_train(self) -> int:
        return sum(self.class_counts)

    def summary(self) -> dict[str, Any]:
        c = self.config
        return {
            "run_id": self.run_id,
            "method": c.method,
            "variant": c.variant,
            "dataset": c.data.dataset,
            "ratio": c.imbalance.ratio,
            "seed": c.seed,
            "class_counts": self.class_counts,
            "n_train": self.n_train,
            "status": self.status,
            "path": str(self.path),
        }


def template(spec: GridSpec) -> RunConfig:
    """The config every run of the grid shares (method, ratio and seed filled in later)."""
    preset = PRESETS.get(spec.preset or default_preset(spec.dataset))
    return RunConfig(
        method="",
        preset=preset.name,
        data=DataConfig(
            spec.dataset,
            image_size=spec.image_size or preset.image_size,
            label=spec.dataset_label,
            val_per_class=spec.val_per_class or 0,
        ),
        imbalance=override(
            ImbalanceConfig(), n_max=spec.n_max, class_order=spec.class_order, profile=spec.profile
        ),
        model=ModelConfig(spec.backbone or preset.backbone, spec.stem or preset.stem),
        train=override(
            TrainConfig(epochs=preset.epochs, batch_size=preset.batch_size),
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            lr=spec.lr,
            precision=spec.precision,
        ),
        eval=EvalConfig(probe_per_class=spec.probe_per_class),
        runtime=override(
            RuntimeConfig(data_root=spec.data_root),
            accelerator=spec.accelerator,
            devices=spec.devices,
            num_workers=spec.num_workers,
        ),
    )


def resolve_config(cfg: RunConfig, source: DatasetSource, pool: list[int]) -> RunConfig:
    """Fill every default that depends on the data or the method, so the record is complete."""
    VARIANTS.get(cfg.variant)
    method_cls = get_method(cfg.method)
    image_size = cfg.data.image_size or source.image_size
    train = cfg.train
    if train.lr is None:
        train = dataclasses.replace(train, lr=BASE_LR * train.batch_size / BASE_LR_BATCH)
    if not method_cls.trains:
        train = dataclasses.replace(train, epochs=0)
    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(
            cfg.data, image_size=image_size, fingerprint=source.fingerprint() or None
        ),
        imbalance=override(cfg.imbalance, n_max=cfg.imbalance.n_max or min(pool)),
        model=dataclasses.replace(
            cfg.model, stem=resolve_stem(cfg.model.backbone, cfg.model.stem, image_size)
        ),
        train=train,
        method_args=dataclasses.asdict(method_cls.make_args(cfg.method_args)),
    )


def same_size_total(
    imb: ImbalanceConfig, pool: list[int], ratios: tuple[float, ...], seeds: tuple[int, ...]
) -> int:
    """The size of the grid's smallest subset (its most imbalanced one): the N that every
    ratio is scaled to, so that imbalance is not confounded with data size."""
    n_max = imb.n_max or min(pool)
    return min(
        sum(class_counts(pool, r, n_max, imb.profile, imb.class_order, s))
        for r in ratios
        for s in seeds
    )


def plan_grid(spec: GridSpec, out_dir: Path) -> list[PlannedRun]:
    if spec.lr is not None and not (math.isfinite(spec.lr) and spec.lr > 0):
        raise UserError(f"--lr {spec.lr} must be a finite number > 0")
    base = template(spec)
    check_runtime(base)
    source = create_dataset(spec.dataset, spec.data_root)
    targets = source.train_targets()
    pool_idx, _ = holdout_split(targets, base.data.val_per_class)
    pool = np.bincount(targets[pool_idx], minlength=len(source.classes)).tolist()
    probe_subset(targets[pool_idx], base.eval.probe_per_class)  # a clear error before any run
    same_size = spec.same_size if spec.same_size is not None else spec.total is not None
    if same_size:
        total = spec.total or same_size_total(base.imbalance, pool, spec.ratios, spec.seeds)
        base = dataclasses.replace(base, imbalance=dataclasses.replace(base.imbalance, total=total))
    plan = []
    grid = itertools.product(spec.methods, spec.variants, spec.ratios, spec.seeds)
    for method, variant, ratio, seed in grid:
        imbalance = dataclasses.replace(base.imbalance, ratio=float(ratio))
        cfg = dataclasses.replace(
            base, method=method, variant=variant, seed=seed, imbalance=imbalance
        )
        cfg = resolve_config(cfg, source, pool)
        imb = cfg.imbalance
        counts = class_counts(
            pool, imb.ratio, imb.n_max or 0, imb.profile, imb.class_order, seed, imb.total
        )
        path = record_path(out_dir, cfg.run_id())
        status = read_record(path)["status"] if path.exists() else "todo"
        plan.append(PlannedRun(cfg, counts, path, status))
    return plan


def eval_device(cfg: RunConfig) -> str:
    wants_gpu = cfg.runtime.accelerator in ("auto", "gpu", "cuda")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


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


def execute(run: PlannedRun, reporter: Reporter | None = None) -> dict[str, Any]:
    """Pre-train and evaluate one run; returns its ``ok`` record (exceptions propagate)."""
    reporter = reporter or NullReporter()
    cfg = run.config
    started, t0 = _now(), time.perf_counter()
    reporter.stage("loading data")
    source = create_dataset(cfg.data.dataset, cfg.runtime.data_root)
    data = source.load()
    targets = source.train_targets()
    pool_idx, val_idx = holdout_split(targets, cfg.data.val_per_class)
    subset_idx = pool_idx[sample_subset(targets[pool_idx], run.class_counts, cfg.seed)]
    subset = data.train.subset(subset_idx)
    probe_idx = pool_idx[probe_subset(targets[pool_idx], cfg.eval.probe_per_class)]
    pool = data.train.subset(probe_idx) if len(probe_idx) < len(targets) else data.train
    t_data = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    image_size = cfg.data.image_size or source.image_size
    backbone, dim = create_backbone(cfg.model.backbone, cfg.model.stem)
    method = create_method(cfg.method, backbone, dim, cfg.method_args, cfg.train, len(data.classes))
    result = VARIANTS.get(cfg.variant).pretrain(
        PretrainContext(cfg, method, subset, image_size, reporter)
    )
    t_train = time.perf_counter()
    device = eval_device(cfg)
    metrics = evaluate(
        result.backbone,
        pool,
        data.test,
        run.class_counts,
        class_ranks(len(data.classes), cfg.imbalance.class_order, cfg.seed),
        cfg.eval,
        image_size,
        device,
        cfg.seed,
        reporter.stage,
        val=data.train.subset(val_idx) if len(val_idx) else None,
    )
    t_end = time.perf_counter()
    return {
        **_record_head(run, source),
        "status": "ok",
        "error": None,
        "metrics": metrics,
        "train": result.train,
        "diagnostics": result.diagnostics,
        "timing": {
            "data_s": round(t_data - t0, 3),
            "pretrain_s": round(t_train - t_data, 3),
            "eval_s": round(t_end - t_train, 3),
        },
        "wall_s": round(t_end - t0, 3),
        "started_at": started,
        "finished_at": _now(),
        "env": collect_env(device),
    }


def failed_record(run: PlannedRun, exc: BaseException, wall_s: float) -> dict[str, Any]:
    source = create_dataset(run.config.data.dataset, run.config.runtime.data_root)
    return {
        **_record_head(run, source),
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
        "metrics": {},
        "wall_s": round(wall_s, 3),
        "finished_at": _now(),
        "env": collect_env(eval_device(run.config)),
    }


def run_grid(
    plan: list[PlannedRun], reporter: Reporter | None = None, retry_failed: bool = False
) -> list[dict[str, Any]]:
    """Run every planned run without a record (and failed ones with `retry_failed`); a run
    that raises gets a ``failed`` record and the grid goes on. Returns all records."""
    reporter = reporter or NullReporter()
    todo = [r for r in plan if r.status == "todo" or (retry_failed and r.status == "failed")]
    for i, run in enumerate(todo):
        c = run.config
        reporter.run_started(
            i, len(todo), f"{c.method}/{c.variant} ratio {c.imbalance.ratio:g} seed {c.seed}"
        )
        t0 = time.perf_counter()
        try:
            record = execute(run, reporter)
        except (UserError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a broken run must not stop the grid
            record = failed_record(run, exc, time.perf_counter() - t0)
        write_record(run.path, record)
        reporter.run_finished(record)
    return [read_record(r.path) for r in plan]
