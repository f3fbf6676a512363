"""Plan a grid (methods x variants x ratios x seeds): each run's resolved config and run id,
its class counts, its record's status, the `matched` factors and the base weights variants
share."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imbssl_bench.config import (
    DataConfig,
    ImbalanceConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    override,
)
from imbssl_bench.data import (
    DatasetSource,
    class_counts,
    holdout_split,
    open_dataset,
    probe_subset,
)
from imbssl_bench.data.imbalance import PARETO_SHAPE
from imbssl_bench.errors import UserError
from imbssl_bench.evaluation.probes.linear import C_GRID, choose_backend
from imbssl_bench.methods import get_method, method_plugin
from imbssl_bench.methods.backbones import backbone_plugin, resolve_stem
from imbssl_bench.presets import PRESETS, default_preset
from imbssl_bench.running.datasetup import check_data_options, published_split, with_transfer
from imbssl_bench.running.fastpath import with_fast_path
from imbssl_bench.running.matching import match_compute
from imbssl_bench.running.options import GridSpec, apply_options
from imbssl_bench.running.records import read_record, record_path
from imbssl_bench.training.draws import DRAWS, KEYED, STREAM
from imbssl_bench.training.trainer import check_runtime
from imbssl_bench.training.weights import belong_to_record, weights_path
from imbssl_bench.variants import get_variant, variant_names, variant_options, variant_plugin


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
            "augment": c.train.augment or "pil",
            "precision": c.train.precision,
            "channels_last": c.runtime.channels_last,
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
    start = RunConfig(
        method="",
        preset=preset.name,
        data=DataConfig(image_size=preset.image_size),
        model=ModelConfig(preset.backbone, preset.stem),
        train=TrainConfig(epochs=preset.epochs, batch_size=preset.batch_size),
    )
    return apply_options(start, spec)


def resolve_config(cfg: RunConfig, source: DatasetSource, pool: list[int]) -> RunConfig:
    """Fill every default that depends on the data or the method, so the record is complete."""
    variant = get_variant(cfg.variant)
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
    if variant.needs_keyed_draws and cfg.train.draws != KEYED:
        raise UserError(
            f"variant '{variant.name}' draws its images or views by hooks, which need keyed "
            "draws: run it with --draws keyed (the default), in a grid of its own"
        )
    image_size = cfg.data.image_size or source.image_size
    train = cfg.train
    if train.lr is None:
        train = dataclasses.replace(train, lr=method_cls.default_lr.at(train.batch_size))
    if not method_cls.trains:
        train = dataclasses.replace(train, epochs=0)
    evaluation = cfg.eval
    has_val = cfg.data.val_per_class or source.has_val
    if has_val and evaluation.linear_c_grid is None:  # C is chosen on val
        evaluation = dataclasses.replace(evaluation, linear_c_grid=C_GRID)
    imbalance = cfg.imbalance
    if imbalance.profile == "pareto" and imbalance.pareto_shape is None:
        imbalance = dataclasses.replace(imbalance, pareto_shape=PARETO_SHAPE)
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(
            cfg.data, image_size=image_size, fingerprint=source.fingerprint() or None
        ),
        imbalance=override(imbalance, n_max=imbalance.n_max or min(pool)),
        model=dataclasses.replace(
            cfg.model, stem=resolve_stem(cfg.model.backbone, cfg.model.stem, image_size)
        ),
        train=train,
        eval=evaluation,
        method_args=dataclasses.asdict(method_cls.make_args(cfg.method_args)),
        plugins=run_plugins(cfg.method, cfg.model.backbone, cfg.variant),
    )
    variant_args = variant.resolve_args(cfg.variant_args, cfg, len(pool))
    return dataclasses.replace(cfg, variant_args=variant_args)


def plugin_options(
    given: dict[str, Any], names: tuple[str, ...], options: dict[str, list[str]], kind: str
) -> dict[str, dict[str, Any]]:
    """`given` options (``method_args`` / ``variant_args``) split by the plugins `names` of
    the grid that take them (`options`: every registered plugin's option names); a key that no
    plugin of the grid takes is a `UserError` naming those that do, or every valid one."""
    split = {name: {k: v for k, v in given.items() if k in options[name]} for name in names}
    unused = sorted(set(given) - {k for taken in split.values() for k in taken})
    if not unused:
        return split
    key, flag = unused[0], f"--{kind}-arg or [{kind}_args]"
    takers = [n for n, keys in options.items() if key in keys and n not in names]
    if takers:
        raise UserError(
            f"{kind} option '{key}' ({flag}) belongs to {kind} {' / '.join(takers)}, which "
            f"this grid does not run; add it to --{kind}{'s' if kind == 'variant' else ''}"
        )
    valid = "; ".join(f"{n}: {', '.join(options[n]) or '-'}" for n in names)
    raise UserError(f"{kind} option '{key}' ({flag}): no {kind} of this grid has it ({valid})")


def grid_plugin_options(spec: GridSpec) -> tuple[dict, dict]:
    """The grid's method and variant options, split by the methods and variants that take
    them."""
    method_opts = {
        n: [f.name for f in dataclasses.fields(get_method(n).Args)] for n in spec.methods
    }
    variant_opts = {n: variant_options(get_variant(n)) for n in spec.variants}
    for name in variant_names():  # to name the variant an option belongs to
        with contextlib.suppress(UserError):  # a broken plugin is not an option's owner
            variant_opts.setdefault(name, variant_options(get_variant(name)))
    return (
        plugin_options(spec.method_args, spec.methods, method_opts, "method"),
        plugin_options(spec.variant_args, spec.variants, variant_opts, "variant"),
    )


def run_plugins(method: str, backbone: str, variant: str) -> dict[str, dict[str, str | None]]:
    """The plugin distributions a run uses, by kind (built-ins are left out): part of its
    identity, so a plugin's new version is a new experiment."""
    found = {
        "method": method_plugin(method),
        "backbone": backbone_plugin(backbone),
        "variant": variant_plugin(variant),
    }
    return {kind: source for kind, source in found.items() if source is not None}


def base_run_id(cfg: RunConfig) -> str:
    """The run id of the `base` run with the same config (whose weights a variant reuses):
    no variant options, and no plugin variant among its plugins."""
    return cfg.base_config().run_id()


def same_size_total(
    imb: ImbalanceConfig, pool: list[int], ratios: tuple[float, ...], seeds: tuple[int, ...]
) -> int:
    """The size of the grid's smallest subset (its most imbalanced one): the N that every
    ratio is scaled to, so that imbalance is not confounded with data size."""
    n_max = imb.n_max or min(pool)
    return min(
        sum(class_counts(pool, r, n_max, imb.profile, imb.class_order, s, None, imb.pareto_shape))
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


def check_draws(spec: GridSpec) -> None:
    """``--draws`` is keyed or stream; stream draws (those of records written before keyed
    draws) depend on the worker count and the processes, so they take one of each."""
    if spec.draws not in (None, *DRAWS):
        raise UserError(f"--draws must be keyed or stream, not '{spec.draws}'")
    if spec.draws == STREAM and (spec.num_workers or 0) > 0:
        raise UserError(
            "--draws stream (the random draws of records written before keyed draws) depends "
            "on the worker count: pass --num-workers 0, or use --draws keyed"
        )
    if spec.draws == STREAM and (spec.devices or 1) * (spec.num_nodes or 1) > 1:
        raise UserError(
            "--draws stream (the random draws of records written before keyed draws) keeps one "
            "process's streams in its checkpoints: train it on one device, or use --draws keyed"
        )


def plan_grid(spec: GridSpec, out_dir: Path, here: bool = True) -> list[PlannedRun]:
    """One `PlannedRun` per grid point with its status from `out_dir`. ``here=False``: the
    runs will execute on other machines (slurm), so this one's hardware is not checked."""
    if spec.lr is not None and not (math.isfinite(spec.lr) and spec.lr > 0):
        raise UserError(f"--lr {spec.lr} must be a finite number > 0")
    if spec.augment not in (None, "auto", "pil", "batched"):
        raise UserError(f"--augment must be auto, pil or batched, not '{spec.augment}'")
    check_draws(spec)
    choose_backend(spec.linear_backend, 0, 0)  # a clear error before any run
    base = template(spec)
    check_runtime(base, here)
    source = open_dataset(base)
    check_data_options(base, source, spec)
    storage = source.choose_storage(base.runtime.streaming)
    targets = source.train_targets()
    pool_idx, val_idx = holdout_split(targets, base.data.val_per_class)
    pool = np.bincount(targets[pool_idx], minlength=len(source.classes)).tolist()
    probe_subset(targets[pool_idx], base.eval.probe_per_class)  # a clear error before any run
    base = with_transfer(base, spec.transfer or ())
    split = published_split(base, source, val_idx, spec.ratios[0])
    if split is not None:  # the subset is the file's: its profile is "split"
        base = override(
            base,
            data=override(base.data, split_name=split.name, split_hash=split.hash),
            imbalance=override(base.imbalance, profile="split"),
        )
    same_size = spec.same_size if spec.same_size is not None else spec.total is not None
    if same_size:
        total = spec.total or same_size_total(base.imbalance, pool, spec.ratios, spec.seeds)
        base = dataclasses.replace(base, imbalance=dataclasses.replace(base.imbalance, total=total))
    configs = []
    method_args, options = grid_plugin_options(spec)
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
        configs.append(with_fast_path(resolve_config(cfg, source, pool), spec, storage, here))
    for precision in sorted({c.train.precision for c in configs} - {base.train.precision}):
        check_runtime(override(base, train=override(base.train, precision=precision)), here)
    plan = []
    for cfg, matched_to in match_compute(configs, len(pool)):
        imb = cfg.imbalance
        counts = (
            split.counts(targets, len(pool))
            if split is not None
            else class_counts(
                pool,
                imb.ratio,
                imb.n_max or 0,
                imb.profile,
                imb.class_order,
                cfg.seed,
                imb.total,
                imb.pareto_shape,
            )
        )
        path = record_path(out_dir, cfg.run_id())
        status = read_record(path)["status"] if path.exists() else "todo"
        plan.append(PlannedRun(cfg, counts, path, status, matched_to=matched_to))
    return share_base_weights(plan, out_dir)


def share_base_weights(plan: list[PlannedRun], out_dir: Path) -> list[PlannedRun]:
    """`base_weights` for the runs whose variant starts from the `base` run of its config,
    where that base run is in the grid with no ``ok`` record yet (it keeps its weights for
    them) or its ``ok`` record names the weights it kept (training/weights.py); elsewhere
    none: such a variant trains its base itself (its stage checkpoint resumes it) and nothing
    is written under ``<out>/weights/``."""
    to_train = {p.run_id for p in plan if p.config.variant == "base" and p.status != "ok"}
    shared = set()
    for i, p in enumerate(plan):
        variant = get_variant(p.config.variant)
        if not variant.uses_base_weights(p.config.variant_args) or p.status == "ok":
            continue  # a finished variant reads no weights
        base_id = base_run_id(p.config)
        path = weights_path(out_dir, base_id)
        if base_id in to_train or belong_to_record(path):
            plan[i] = dataclasses.replace(p, base_weights=path)
            shared.add(base_id)
    return [
        dataclasses.replace(p, base_weights=weights_path(out_dir, p.run_id))
        if p.config.variant == "base" and p.run_id in shared & to_train
        else p
        for p in plan
    ]
