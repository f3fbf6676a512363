"""Frozen run configuration: what a record stores and what its run id hashes.

One dataclass per section; ``None`` means "use the default that `resolve_config` fills in".
`RuntimeConfig` holds where and how a run executes (data folder, device, loader workers); it is
stored in the record, and only its fields that change the numbers are part of the run's
identity (`RUNTIME_IDENTITY`: the memory format, compilation, the training processes), so
moving the data, another worker count or switching from CPU to GPU does not change the run
id. The training path (``train.augment``, ``train.precision``) is: left unset, planning picks
it per machine and storage (running/fastpath.py), so such a grid planned where bf16 is native
gets other ids than where it is not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

# Lightly's CIFAR-10 benchmark: SGD lr 0.06 x batch / 128, momentum 0.9, wd 5e-4, cosine.
BASE_LR = 0.06
BASE_LR_BATCH = 128


@dataclass(frozen=True)
class LrRule:
    """How a method's default lr follows from the batch size (a method declares its own as
    ``Method.default_lr``; an explicit ``--lr`` wins).

    Examples:
        >>> LrRule(0.06, "linear").at(512), LrRule(0.06, "none").at(512)
        (0.24, 0.06)
    """

    base_lr: float = BASE_LR
    lr_scaling: str = "linear"  # linear: base_lr x batch / base_batch | none: base_lr
    base_batch: int = BASE_LR_BATCH

    def at(self, batch_size: int) -> float:
        if self.lr_scaling == "none":
            return self.base_lr
        if self.lr_scaling == "linear":
            return self.base_lr * batch_size / self.base_batch
        raise ValueError(f"lr_scaling {self.lr_scaling!r} must be 'linear' or 'none'")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    image_size: int | None = None  # None: the dataset's native size
    fingerprint: str | None = None  # resolved: tells apart image folders with equal settings
    label: str | None = None  # how tables name the data, e.g. "CIFAR-10 (JPEG)"
    val_per_class: int = 0  # balanced validation split held out of the train pool first
    classes: str | None = None  # a subset of the classes, e.g. "0-4" (relabelled 0..k-1)
    split_name: str | None = None  # a published subset (--split-file): its file's name...
    split_hash: str | None = None  # ...and the hash of its content (resolved)


@dataclass(frozen=True)
class ImbalanceConfig:
    ratio: float = 1.0  # rho = n_max / n_min >= 1
    profile: str = "exponential"  # exponential | step | pareto
    n_max: int | None = None  # None: the smallest per-class count of the train pool
    class_order: str = "index"  # index | reverse | random | a comma-separated permutation
    total: int | None = None  # same-size control: every subset scaled to exactly this many
    pareto_shape: float | None = None  # the pareto profile's alpha (resolved: 6); None otherwise


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "resnet18"  # any timm model name
    stem: str = "auto"  # auto | cifar | timm; resolved to cifar or timm


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 512
    lr: float | None = None  # None: the method's `default_lr` rule at this batch size
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # any Lightning precision string; planning resolves an unset one (running/fastpath.py)
    precision: str = "32-true"
    # "batched": views made on the device (kornia); None: Lightly's per image ("pil"); planning
    # resolves an unset one (running/fastpath.py)
    augment: str | None = None
    # keyed: every random draw of training from (seed, stage, epoch, image), so a resume or
    # another worker count changes nothing; stream: the records written before keyed draws
    # (training/draws.py)
    draws: str = "keyed"


@dataclass(frozen=True)
class EvalConfig:
    knn_k: int = 200  # capped by the bank size
    knn_temperature: float = 0.1
    linear_c: float = 1.0  # inverse L2 strength of the logistic regression (no val split)
    # with a val split: C chosen on it from these (resolved to 0.01, 0.1, 1, 10); None without
    linear_c_grid: tuple[float, ...] | None = None
    linear_max_iter: int = 1000
    linear_backend: str | None = None  # auto (None) | sklearn | torch: who fits the linear probe
    fewshot_fraction: float = 0.01  # few-shot probe: this share of the probe pool per class (>= 1)
    probe_per_class: int | None = None  # probes fit on this many pool images per class; None: all
    feature_batch_size: int = 512
    # out-of-domain targets (--transfer) by key, with their data fingerprints (resolved)
    transfer: dict[str, str | None] | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    data_root: str | None = None
    accelerator: str = "auto"
    devices: int = 1  # per node; > 1 (or num_nodes > 1): Lightning DDP
    num_nodes: int = 1
    strategy: str = "auto"  # Lightning strategy; "auto" is ddp when there are several devices
    sync_batchnorm: bool = False
    num_workers: int = 0
    channels_last: bool = True  # NHWC weights and activations (faster convs on GPU/oneDNN)
    compile: bool = False  # torch.compile the backbone
    streaming: bool | None = None  # images from disk (True), in memory (False), None: chosen
    train_list: str | None = None  # filelist: 'relative/path label' lines
    test_list: str | None = None
    val_list: str | None = None
    split_file: str | None = None  # train indices or paths of a published subset
    transfer: tuple[str, ...] | None = None  # the --transfer targets as given (with roots)
    logger: str = "csv"  # training logs under <out>/logs/<run_id>/: csv, tensorboard, wandb, none
    # online kNN every N epochs of a stage (None: about 10 points; 0: off); it changes no
    # number of the run, so it is not part of the run id (knn_top1_best records its schedule)
    monitor_every: int | None = None


# Fields added after records were published, with the value every earlier record had: left out
# of the hash at that value, so the run ids of existing records stay valid (a record without the
# field is read with that value).
LEGACY_VALUES: dict[tuple[str, str], Any] = {
    ("train", "draws"): "stream",
    ("runtime", "channels_last"): False,
    ("runtime", "compile"): False,
    ("runtime", "devices"): 1,
    ("runtime", "num_nodes"): 1,
    ("runtime", "sync_batchnorm"): False,
}
# The runtime fields that change a run's numbers (the memory format changes the convolutions'
# rounding; DDP changes batch-norm batches): part of the identity where not at their legacy value.
RUNTIME_IDENTITY = ("channels_last", "compile", "devices", "num_nodes", "sync_batchnorm")

# Options added after records were published: left out of the hash while unset, so the run ids
# of existing records stay valid.
HASHED_ONLY_WHEN_SET = (
    ("eval", "probe_per_class"),
    ("train", "augment"),
    ("eval", "linear_c_grid"),
    ("data", "classes"),
    ("data", "split_name"),
    ("data", "split_hash"),
    ("eval", "transfer"),
    ("imbalance", "pareto_shape"),
    ("eval", "linear_backend"),
)


@dataclass(frozen=True)
class RunConfig:
    method: str
    variant: str = "base"
    seed: int = 0
    preset: str = "tiny"
    data: DataConfig = field(default_factory=DataConfig)
    imbalance: ImbalanceConfig = field(default_factory=ImbalanceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    method_args: dict[str, Any] = field(default_factory=dict)
    variant_args: dict[str, Any] = field(default_factory=dict)  # resolved; empty for `base`
    # resolved: the distribution and version of a plugin method or backbone, by kind ("method",
    # "backbone"); empty for built-ins, so a plugin's new version is a new experiment
    plugins: dict[str, Any] = field(default_factory=dict)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """Everything that defines the experiment: the runtime fields that change numbers
        (`RUNTIME_IDENTITY`) and not the rest of the runtime section, nor the labels (the
        data's, the preset's name)."""
        d = self.to_dict()
        d["runtime"] = {k: d["runtime"][k] for k in RUNTIME_IDENTITY}
        del d["data"]["label"]  # renaming the data in tables must not re-run anything
        del d["preset"]  # a label: its backbone, size and budget are resolved into the config
        for section, key in HASHED_ONLY_WHEN_SET:
            if d[section][key] is None:
                del d[section][key]
        for (section, key), legacy in LEGACY_VALUES.items():
            if d[section][key] == legacy:
                del d[section][key]
        if not d["runtime"]:
            del d["runtime"]
        for key in ("variant_args", "plugins"):
            if not d[key]:
                del d[key]
        return d

    def config_hash(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def base_config(self) -> RunConfig:
        """The `base` run of this config: no variant options, no plugin variant; what a
        remedy, its `base` and its `matched` control share (`without_variant`)."""
        plugins = {kind: source for kind, source in self.plugins.items() if kind != "variant"}
        return dataclasses.replace(self, variant="base", variant_args={}, plugins=plugins)

    @property
    def world_size(self) -> int:
        """Training processes: `train.batch_size` is split among them (the global batch)."""
        return self.runtime.devices * self.runtime.num_nodes

    def run_id(self) -> str:
        """Readable prefix + config hash, e.g. ``digits-simsiam-base-r10-s0-3f2a9c01b7e4``."""
        ratio = f"{self.imbalance.ratio:g}"
        return (
            f"{self.data.dataset}-{self.method}-{self.variant}-r{ratio}-s{self.seed}-"
            f"{self.config_hash()}"
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        sections = {
            "data": DataConfig,
            "imbalance": ImbalanceConfig,
            "model": ModelConfig,
            "train": TrainConfig,
            "eval": EvalConfig,
            "runtime": RuntimeConfig,
        }
        d = {k: dict(v) if k in sections else v for k, v in d.items()}
        for (section, key), legacy in LEGACY_VALUES.items():  # records written before the field
            d.setdefault(section, {}).setdefault(key, legacy)
        kwargs = {k: (sections[k](**v) if k in sections else v) for k, v in d.items()}
        return cls(**kwargs)


def without_variant(identity: dict[str, Any]) -> dict[str, Any]:
    """An identity (`RunConfig.identity`, whole or less its seed and ratio) without its
    variant, the variant's options and its plugin: the setting a remedy shares with its
    controls."""
    d = {k: v for k, v in identity.items() if k not in ("variant", "variant_args", "plugins")}
    plugins = {k: v for k, v in identity.get("plugins", {}).items() if k != "variant"}
    return {**d, "plugins": plugins} if plugins else d


def make_args(args_cls: type, values: dict[str, Any], owner: str) -> Any:
    """An ``Args`` dataclass from `values`; unknown keys are a `UserError` naming `owner`."""
    from imbssl_bench.errors import UserError

    fields = {f.name: f for f in dataclasses.fields(args_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(
            f"{owner} has no option(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(fields)) or '(none)'}"
        )
    values = {k: _typed(v, fields[k], owner) for k, v in values.items()}
    try:
        return args_cls(**values)
    except ValueError as exc:  # from the Args' own checks (`__post_init__`, `check_range`)
        raise UserError(f"{owner}: {' '.join(str(exc).split())}") from None


def check_range(args: Any, interval: str, *names: str) -> None:
    """For an ``Args.__post_init__``: a `ValueError` naming the first of the options `names`
    whose value lies outside `interval`, written as in maths (``"(0, inf)"``, ``"[0, 1)"``);
    ``None`` (a default filled later) passes.

    Examples:
        >>> from types import SimpleNamespace
        >>> check_range(SimpleNamespace(dim=-5), "(0, inf)", "dim")
        Traceback (most recent call last):
        ValueError: option dim = -5 must be > 0
    """
    low, high = (float(x) for x in interval[1:-1].split(","))
    above = (lambda v: v > low) if interval[0] == "(" else (lambda v: v >= low)
    below = (lambda v: v < high) if interval[-1] == ")" else (lambda v: v <= high)
    for name in names:
        value = getattr(args, name)
        if value is not None and not (above(value) and below(value)):  # NaN fails both
            rule = f"{'>' if interval[0] == '(' else '>='} {low:g}"
            rule = rule if high == math.inf else f"in {interval}"
            raise ValueError(f"option {name} = {value!r} must be {rule}")


def _typed(value: Any, field: dataclasses.Field, owner: str) -> Any:
    """`value` checked against a scalar field type (ints widen to float, so 1 and 1.0 give
    one run id); other annotations are passed through."""
    from imbssl_bench.errors import UserError

    text = field.type.__name__ if isinstance(field.type, type) else str(field.type)
    kind = text.removesuffix(" | None")
    if value is None and text.endswith("| None"):
        return None
    expected = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}.get(kind)
    if expected is None:
        return value
    if kind == "str" and isinstance(value, int | float):  # e.g. --method-arg name=123
        value = json.dumps(value)
    if not isinstance(value, expected) or (isinstance(value, bool) and kind != "bool"):
        raise UserError(f"{owner}: option {field.name} = {value!r} must be of type {kind}")
    return float(value) if kind == "float" else value


def override(cfg: Any, **changes: Any) -> Any:
    """`dataclasses.replace` that ignores ``None`` values (timm's create_model style)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})
