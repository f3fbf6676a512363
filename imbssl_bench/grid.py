"""Plan a grid (methods x variants x ratios x seeds), resolve each run's config, run what is
missing, and write one record per run."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytorch_lightning as pl
from lightning_fabric.utilities.rank_zero import rank_zero_only

from imbssl_bench.config import (
    DataConfig,
    EvalConfig,
    ImbalanceConfig,
    ModelConfig,
    RunConfig,
    RuntimeConfig,
    TrainConfig,
    override,
)
from imbssl_bench.data import (
    DatasetSource,
    class_counts,
    class_ranks,
    create_dataset,
    holdout_split,
    probe_subset,
    sample_subset,
)
from imbssl_bench.envinfo import collect_env, peak_memory, reset_peak_memory, run_plugins
from imbssl_bench.errors import UserError
from imbssl_bench.evaluation.features import feature_device
from imbssl_bench.evaluation.probes.linear import C_GRID
from imbssl_bench.evaluation.protocol import evaluate
from imbssl_bench.methods import Method, create_method, get_method
from imbssl_bench.methods.backbones import create_backbone, resolve_stem
from imbssl_bench.presets import PRESETS, default_preset
from imbssl_bench.progress import NullReporter, Reporter
from imbssl_bench.records import SCHEMA, read_record, record_path, write_record
from imbssl_bench.training.checkpoints import CHECKPOINTS, discard, remove_if_empty
from imbssl_bench.training.trainer import check_runtime
from imbssl_bench.training.weights import weights_path
from imbssl_bench.variants import VARIANTS, PretrainContext
from imbssl_bench.variants.api import compute_section

if TYPE_CHECKING:
    from imbssl_bench.launchers import SlurmOptions


@dataclass(frozen=True)
class GridSpec:
    """What the user asked for; ``None`` fields fall back to the preset, then the defaults."""

    methods: tuple[str, ...]
    ratios: tuple[float, ...]
    seeds: tuple[int, ...] = (0,)
    variants: tuple[str, ...] = ("base",)
    method_args: dict[str, Any] = field(default_factory=dict)  # each to the methods that have it
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
    # options of variants (each goes to the variants of the grid whose Args have it)
    clusters: int | None = None
    expert_steps: int | None = None
    min_cluster_size: int | None = None
    student_epochs: int | None = None
    student_init: str | None = None
    distill_weight: float | None = None
    sam_rho: float | None = None
    sam_adaptive: bool | None = None
    rwsam_warmup: int | None = None
    rwsam_refresh: int | None = None
    rwsam_k: int | None = None
    rwsam_alpha: float | None = None
    matched_factor: float | None = None  # None: the costliest other variant of the grid
    rwsam_weights: str | None = None  # inloop | offline
    precision: str | None = None
    augment: str | None = None  # pil (Lightly, per image) or batched (kornia, on the device)
    channels_last: bool | None = None
    compile: bool | None = None
    accelerator: str | None = None
    devices: int | None = None
    num_nodes: int | None = None
    strategy: str | None = None
    sync_batchnorm: bool | None = None
    num_workers: int | None = None


VARIANT_OPTIONS = (
    "clusters",
    "expert_steps",
    "min_cluster_size",
    "student_epochs",
    "student_init",
    "distill_weight",
    "sam_rho",
    "sam_adaptive",
    "rwsam_warmup",
    "rwsam_refresh",
    "rwsam_k",
    "rwsam_alpha",
    "matched_factor",
    "rwsam_weights",
)


@dataclass(frozen=True)
class PlannedRun:
    config: RunConfig  # resolved
    class_counts: list[int]
    path: Path
    status: str  # "todo", or the status of the record already at `path` ("ok" / "failed")
    base_weights: Path | None = None  # where the base run of this config keeps its weights
    matched_to: tuple[str, ...] = ()  # `matched`: the run ids whose compute it was planned to

    @property
    def run_id(self) -> str:
        return self.config.run_id()

    @property
    def n_train(self) -> int:
        return sum(self.class_counts)

    @property
    def label(self) -> str:
        c = self.config
        return f"{c.method}/{c.variant} ratio {c.imbalance.ratio:g} seed {c.seed}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what a worker process needs to execute the run."""
        return {
            "config": self.config.to_dict(),
            "class_counts": self.class_counts,
            "path": str(self.path),
            "status": self.status,
            "base_weights": None if self.base_weights is None else str(self.base_weights),
            "matched_to": list(self.matched_to),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedRun:
        weights = d["base_weights"]
        return cls(
            RunConfig.from_dict(d["config"]),
            list(d["class_counts"]),
            Path(d["path"]),
            d["status"],
            None if weights is None else Path(weights),
            tuple(d.get("matched_to", ())),
        )

    def summary(self) -> dict[str, Any]:
        c = self.config
        return {
            "run_id": self.run_id,
            "method": c.method,
            "variant": c.variant,
            "variant_args": c.variant_args,
            "matched_to": list(self.matched_to),
            "method_args": c.method_args,
            "lr": c.train.lr,
            "batch_size": c.train.batch_size,
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
            augment=None if spec.augment == "pil" else spec.augment,  # one run id for both
        ),
        eval=EvalConfig(probe_per_class=spec.probe_per_class),
        runtime=override(
            RuntimeConfig(data_root=spec.data_root),
            accelerator=spec.accelerator,
            devices=spec.devices,
            num_nodes=spec.num_nodes,
            strategy=spec.strategy,
            sync_batchnorm=spec.sync_batchnorm,
            num_workers=spec.num_workers,
            channels_last=spec.channels_last,
            compile=spec.compile,
        ),
    )


def resolve_config(cfg: RunConfig, source: DatasetSource, pool: list[int]) -> RunConfig:
    """Fill every default that depends on the data or the method, so the record is complete."""
    variant = VARIANTS.get(cfg.variant)
    method_cls = get_method(cfg.method)
    if variant.needs_training and not method_cls.trains:
        raise UserError(
            f"variant '{variant.name}' needs a method that trains; '{cfg.method}' does not: "
            f"run it in a grid of its own with --variants base"
        )
    if variant.needs_per_example_loss and not method_cls.has_per_example_loss():
        raise UserError(
            f"variant '{variant.name}' re-weights per-example losses, and method "
            f"'{cfg.method}' does not give them (it implements only training_loss)"
        )
    image_size = cfg.data.image_size or source.image_size
    train = cfg.train
    if train.lr is None:
        train = dataclasses.replace(train, lr=method_cls.default_lr.at(train.batch_size))
    if not method_cls.trains:
        train = dataclasses.replace(train, epochs=0)
    evaluation = cfg.eval
    if cfg.data.val_per_class and evaluation.linear_c_grid is None:  # C is chosen on val
        evaluation = dataclasses.replace(evaluation, linear_c_grid=C_GRID)
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(
            cfg.data, image_size=image_size, fingerprint=source.fingerprint() or None
        ),
        imbalance=override(cfg.imbalance, n_max=cfg.imbalance.n_max or min(pool)),
        model=dataclasses.replace(
            cfg.model, stem=resolve_stem(cfg.model.backbone, cfg.model.stem, image_size)
        ),
        train=train,
        eval=evaluation,
        method_args=dataclasses.asdict(method_cls.make_args(cfg.method_args)),
        plugins=run_plugins(cfg.method, cfg.model.backbone),
    )
    variant_args = variant.resolve_args(cfg.variant_args, cfg, len(pool))
    return dataclasses.replace(cfg, variant_args=variant_args)


def variant_options(spec: GridSpec) -> dict[str, dict[str, Any]]:
    """The variant options given in `spec`, split by the variants of the grid that take them."""
    given = {k: getattr(spec, k) for k in VARIANT_OPTIONS if getattr(spec, k) is not None}
    per_variant = {}
    for name in spec.variants:
        known = {f.name for f in dataclasses.fields(VARIANTS.get(name).Args)}
        per_variant[name] = {k: v for k, v in given.items() if k in known}
    unused = sorted(set(given) - {k for opts in per_variant.values() for k in opts})
    if unused:
        key = unused[0]
        takers = [
            n for n, v in VARIANTS.items() if key in {f.name for f in dataclasses.fields(v.Args)}
        ]
        raise UserError(
            f"--{key.replace('_', '-')} is an option of variant {' / '.join(takers)}, which "
            "this grid does not run; add it to --variants"
        )
    return per_variant


def method_options(spec: GridSpec) -> dict[str, dict[str, Any]]:
    """`spec.method_args` split by the methods of the grid whose ``Args`` have them."""
    per_method = {}
    for name in spec.methods:
        known = {f.name for f in dataclasses.fields(get_method(name).Args)}
        per_method[name] = {k: v for k, v in spec.method_args.items() if k in known}
    unused = sorted(set(spec.method_args) - {k for a in per_method.values() for k in a})
    if unused:
        options = "; ".join(
            f"{n}: {', '.join(f.name for f in dataclasses.fields(get_method(n).Args)) or '-'}"
            for n in spec.methods
        )
        raise UserError(
            f"method option '{unused[0]}' (--method-arg or [method_args]): no method of this "
            f"grid has it ({options})"
        )
    return per_method


def base_run_id(cfg: RunConfig) -> str:
    """The run id of the `base` run with the same config (whose weights a variant reuses)."""
    return dataclasses.replace(cfg, variant="base", variant_args={}).run_id()


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


def same_size_note(spec: GridSpec, plan: list[PlannedRun]) -> str | None:
    """One line when the same-size N was derived from the ratios being run rather than given
    (``total``): running a part of the grid alone would derive another N, another experiment."""
    if spec.total is not None or not plan or plan[0].config.imbalance.total is None:
        return None
    n = plan[0].config.imbalance.total
    ratios = ",".join(f"{r:g}" for r in spec.ratios)
    return (
        f"same size: N={n} derived from the smallest subset of ratios {ratios}; pass "
        f"--total {n} to reproduce it when re-running a part of this grid"
    )


def plan_grid(spec: GridSpec, out_dir: Path, here: bool = True) -> list[PlannedRun]:
    """One `PlannedRun` per grid point with its status from `out_dir`. ``here=False``: the
    runs will execute on other machines (slurm), so this one's hardware is not checked."""
    if spec.lr is not None and not (math.isfinite(spec.lr) and spec.lr > 0):
        raise UserError(f"--lr {spec.lr} must be a finite number > 0")
    if spec.augment not in (None, "pil", "batched"):
        raise UserError(f"--augment must be pil or batched, not '{spec.augment}'")
    base = template(spec)
    check_runtime(base, here)
    source = create_dataset(spec.dataset, spec.data_root)
    targets = source.train_targets()
    pool_idx, _ = holdout_split(targets, base.data.val_per_class)
    pool = np.bincount(targets[pool_idx], minlength=len(source.classes)).tolist()
    probe_subset(targets[pool_idx], base.eval.probe_per_class)  # a clear error before any run
    same_size = spec.same_size if spec.same_size is not None else spec.total is not None
    if same_size:
        total = spec.total or same_size_total(base.imbalance, pool, spec.ratios, spec.seeds)
        base = dataclasses.replace(base, imbalance=dataclasses.replace(base.imbalance, total=total))
    configs = []
    options = variant_options(spec)
    method_args = method_options(spec)
    grid = itertools.product(spec.methods, spec.variants, spec.ratios, spec.seeds)
    for method, variant, ratio, seed in grid:
        imbalance = dataclasses.replace(base.imbalance, ratio=float(ratio))
        cfg = dataclasses.replace(
            base,
            method=method,
            variant=variant,
            seed=seed,
            imbalance=imbalance,
            variant_args=options[variant],
            method_args=method_args[method],
        )
        configs.append(resolve_config(cfg, source, pool))
    plan = []
    for cfg, matched_to in match_compute(configs, len(pool)):
        imb = cfg.imbalance
        counts = class_counts(
            pool, imb.ratio, imb.n_max or 0, imb.profile, imb.class_order, cfg.seed, imb.total
        )
        path = record_path(out_dir, cfg.run_id())
        status = read_record(path)["status"] if path.exists() else "todo"
        plan.append(PlannedRun(cfg, counts, path, status, matched_to=matched_to))
    return share_base_weights(plan, out_dir)


def variant_cost(cfg: RunConfig) -> float:
    """The forward-backward passes the resolved run `cfg` plans, relative to plain `base`."""
    cost = VARIANTS.get(cfg.variant).cost
    return float(cost(cfg.variant_args, cfg)) if cost is not None else 1.0


def match_compute(
    configs: list[RunConfig], num_classes: int
) -> list[tuple[RunConfig, tuple[str, ...]]]:
    """Each resolved config with the runs it is matched to: a `matched` run without a factor
    gets the cost of the costliest other variant of the same method, ratio and seed (the run
    ids of those variants' runs; () for the others and for a given factor)."""
    out = []
    for cfg in configs:
        if cfg.variant != "matched" or cfg.variant_args.get("matched_factor") is not None:
            out.append((cfg, ()))
            continue
        point = (cfg.method, cfg.imbalance.ratio, cfg.seed)
        costs = {
            c.run_id(): variant_cost(c)
            for c in configs
            if (c.method, c.imbalance.ratio, c.seed) == point and c.variant != "matched"
        }
        top = max(costs.values(), default=1.0)
        if top <= 1.0:
            raise UserError(
                f"variant 'matched' trains as long as the grid's costliest other variant, and "
                f"{cfg.method} has none costlier than base here; add a remedy to --variants "
                "(e.g. sam, cluster-distill) or give --matched-factor X"
            )
        values = {**cfg.variant_args, "matched_factor": round(top, 4)}
        args = VARIANTS.get("matched").resolve_args(values, cfg, num_classes)
        to = tuple(sorted(run_id for run_id, c in costs.items() if c == top))
        out.append((dataclasses.replace(cfg, variant_args=args), to))
    return out


def share_base_weights(plan: list[PlannedRun], out_dir: Path) -> list[PlannedRun]:
    """`base_weights` for the runs whose variant starts from the `base` run of its config,
    where that base run is in the grid with no ``ok`` record yet (it keeps its weights for
    them) or kept them earlier; elsewhere none: such a variant trains its base itself (its
    stage checkpoint resumes it) and nothing is written under ``<out>/weights/``."""
    to_train = {p.run_id for p in plan if p.config.variant == "base" and p.status != "ok"}
    shared = set()
    for i, p in enumerate(plan):
        variant = VARIANTS.get(p.config.variant)
        if not variant.uses_base_weights(p.config.variant_args) or p.status == "ok":
            continue  # a finished variant reads no weights
        base_id = base_run_id(p.config)
        path = weights_path(out_dir, base_id)
        if base_id in to_train or path.is_file():
            plan[i] = dataclasses.replace(p, base_weights=path)
            shared.add(base_id)
    return [
        dataclasses.replace(p, base_weights=weights_path(out_dir, p.run_id))
        if p.config.variant == "base" and p.run_id in shared & to_train
        else p
        for p in plan
    ]


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
    source = create_dataset(cfg.data.dataset, cfg.runtime.data_root)
    check_same_data(cfg, source)
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

    def make_method() -> Method:
        backbone, dim = create_backbone(cfg.model.backbone, cfg.model.stem, image_size=image_size)
        return create_method(
            cfg.method, backbone, dim, cfg.method_args, cfg.train, len(data.classes)
        )

    method = make_method()
    normalize = method.input_normalization(image_size)  # evaluation sees inputs as training
    result = VARIANTS.get(cfg.variant).pretrain(
        PretrainContext(
            cfg,
            method,
            subset,
            image_size,
            reporter,
            make_method,
            run.base_weights,
            checkpoint_dir(run),
            run.matched_to,
        )
    )
    t_train = time.perf_counter()
    if rank_zero_only.rank != 0:  # the other DDP processes are done
        return None
    device = feature_device(cfg.runtime.accelerator)
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
        normalize=normalize,
    )
    t_end = time.perf_counter()
    return {
        **_record_head(run, source),
        "status": "ok",
        "error": None,
        "metrics": metrics,
        "train": result.train,
        "compute": compute_section(result.compute, result.train, cfg, run.n_train),
        "diagnostics": result.diagnostics,
        "timing": {
            "data_s": round(t_data - t0, 3),
            "pretrain_s": round(t_train - t_data, 3),
            "eval_s": round(t_end - t_train, 3),
        },
        "memory": peak_memory(),
        "wall_s": round(t_end - t0, 3),
        "started_at": started,
        "finished_at": _now(),
        "env": collect_env(device, cfg.plugins),
    }


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
    source = create_dataset(run.config.data.dataset, run.config.runtime.data_root)
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


def run_grid(
    plan: list[PlannedRun],
    reporter: Reporter | None = None,
    retry_failed: bool = False,
    jobs: int = 1,
    launcher: str = "local",
    slurm: SlurmOptions | None = None,
) -> list[dict[str, Any]]:
    """Run every planned run without a record (and failed ones with `retry_failed`) with the
    `launcher` (see `imbssl_bench.launchers`); a run that raises gets a ``failed`` record and
    the grid goes on. Returns all records."""
    from imbssl_bench.launchers import LAUNCHERS, SlurmOptions, run_local, run_slurm

    if launcher not in LAUNCHERS:
        raise UserError(f"unknown launcher '{launcher}'; valid: {', '.join(LAUNCHERS)}")
    if jobs < 1:
        raise UserError(f"--jobs {jobs} must be at least 1")
    reporter = reporter or NullReporter()
    todo = [r for r in plan if r.status == "todo" or (retry_failed and r.status == "failed")]
    if launcher == "slurm":
        run_slurm(todo, reporter, slurm or SlurmOptions())
    else:
        run_local(todo, reporter, jobs, lambda run: run_here(run, reporter))
    for folder in {checkpoint_dir(r).parent for r in todo}:
        remove_if_empty(folder)
    return [read_record(r.path) for r in plan]
