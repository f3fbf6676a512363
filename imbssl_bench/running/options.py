"""The grid options, each declared once: its name (the `GridSpec` field and the grid-file key),
type, default, help, and where it goes in the resolved `RunConfig`. The ``run`` command's
flags, the grid-file checks and `GridSpec` itself are derived from `OPTIONS`, so adding a grid
option is one entry here.

Options of methods and variants are not grid options: they go through ``method_args`` and
``variant_args`` (``--method-arg`` / ``--variant-arg key=value``, ``[method_args]`` /
``[variant_args]`` in grid files) to the plugins that declare them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imbssl_bench.errors import UserError
from imbssl_bench.parsing import parse_key_values, parse_names, parse_ratios, parse_seeds

GRID = "Grid"
SETUP = "Setup (override the preset)"
RUNTIME = "Runtime"


@dataclass(frozen=True)
class GridOption:
    """One grid option. `kind`: ``int``, ``float``, ``str``, ``bool``, ``list`` (a comma list
    on the command line, a TOML list in files, parsed by `parse`) or ``dict`` (repeated
    ``key=value`` flags, a TOML table)."""

    name: str
    kind: type
    help: str
    panel: str = SETUP
    target: str | None = None  # "section.field" of RunConfig it sets; None: the grid uses it
    default: Any = None  # None: unset (the preset's, then the config's default)
    minimum: float | None = None
    flags: tuple[str, ...] = ()  # command-line names; default: --name-with-dashes
    parse: Callable[[str], Any] | None = None  # list options: comma text -> tuple
    to_config: Callable[[Any], Any] | None = None  # the value as the config stores it

    @property
    def cli_names(self) -> tuple[str, ...]:
        dashed = self.name.replace("_", "-")
        if self.kind is bool:
            return self.flags or (f"--{dashed}/--no-{dashed}",)
        return self.flags or (f"--{dashed}",)

    @property
    def flag(self) -> str:
        """The option's name as the user types it (for messages)."""
        return self.cli_names[0].split("/")[0]

    def annotation(self) -> Any:
        """The `GridSpec` field type."""
        return {list: tuple, dict: dict}.get(self.kind) or (self.kind | None)

    def spec_field(self) -> tuple[str, Any, Any]:
        if self.kind is dict:
            return self.name, dict, field(default_factory=dict)
        if self.name in ("methods", "ratios"):
            return self.name, tuple, dataclasses.MISSING  # required
        default = self.default
        if self.kind is list and default is not None:
            default = self.parsed(default)
        return self.name, self.annotation(), default

    def parsed(self, text: str) -> tuple:
        """A list option's comma text as its tuple."""
        return self.parse(text) if self.parse else parse_names(text, self.flag)

    def from_cli(self, value: Any) -> Any:
        """A parsed command-line value as a grid-file value would be (dict: key=value items)."""
        return parse_key_values(value, self.flag) if self.kind is dict else value

    def check(self, value: Any) -> Any:
        """`value` (from a grid file or a flag) checked and in its `GridSpec` form."""
        if self.kind is list:
            text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            return self.parsed(text)
        if self.kind is float:
            value = float(value)  # 1 and 1.0 must give one run id
        if self.minimum is not None and value < self.minimum:
            raise UserError(f"{self.name} = {value} must be >= {self.minimum:g}")
        return value

    def file_type_error(self, value: Any) -> str | None:
        """What is wrong with the type of a grid-file value, or None."""
        if self.kind is list:
            ok = isinstance(value, list) and bool(value)
            return None if ok else f"'{self.name}' must be a non-empty list"
        if self.kind is dict:
            table = f"[{self.name}]"
            return None if isinstance(value, dict) else f"'{self.name}' must be a table {table}"
        expected = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}[self.kind]
        if isinstance(value, expected) and (self.kind is bool or not isinstance(value, bool)):
            return None
        return f"'{self.name}' = {value!r} has the wrong type (expected {self.kind.__name__})"


# Lightning's short precision names, spelled out so that one precision has one run id;
# "auto" keeps the reference value here and planning resolves it (running/fastpath.py)
PRECISION_ALIASES = {
    "auto": "32-true", "32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"
}  # fmt: skip


def _opt(name: str, kind: type, help: str, **kw: Any) -> GridOption:
    return GridOption(name, kind, help, **kw)


OPTIONS: tuple[GridOption, ...] = (
    # -- the grid: what runs
    _opt("methods", list, "Methods, comma list (see `imbssl-bench methods`).", panel=GRID,
         flags=("--method", "-m")),
    _opt("ratios", list, "Imbalance ratios rho = n_max/n_min, comma list.", panel=GRID,
         default="1,10,100", parse=parse_ratios),
    _opt("seeds", list, "Seeds, comma list.", panel=GRID, default="0", parse=parse_seeds),
    _opt("variants", list, "Variants, comma list (see `imbssl-bench variants`).", panel=GRID,
         default="base"),
    _opt("method_args", dict, "A method option, key=value (repeatable), e.g. temperature=0.2; "
         "each goes to the methods that have it (`imbssl-bench methods --args`).", panel=GRID,
         flags=("--method-arg",)),
    _opt("variant_args", dict, "A variant option, key=value (repeatable), e.g. sam_rho=0.05; "
         "each goes to the variants that have it (`imbssl-bench variants --args`).",
         panel=GRID, flags=("--variant-arg",)),
    _opt("dataset", str, "See `imbssl-bench datasets`.", panel=GRID, target="data.dataset",
         default="digits"),
    _opt("data_root", str, "Folder of the dataset.", panel=GRID, target="runtime.data_root"),
    _opt("classes", str, "Keep only these classes, e.g. 0-4 or 0,2,5-7 (numbers or names, "
         "relabelled 0..k-1 in that order).", panel=GRID, target="data.classes"),
    _opt("split_file", str, "Train on a published subset instead of drawing one: a file of "
         "train indices or relative paths, one per line (e.g. SDCLR's CIFAR-10-LT splits); "
         "--ratios then only labels it.", panel=GRID, target="runtime.split_file"),
    _opt("transfer", list, "Out-of-domain evaluation: probe the frozen backbone on these "
         "datasets too, comma list of NAME[:ROOT][@CLASSES], e.g. digits or "
         "stl10:DIR or imagefolder:DIR@5-9.", panel=GRID),
    _opt("train_list", str, "filelist: the train list ('relative/path label' lines).",
         panel=GRID, target="runtime.train_list"),
    _opt("test_list", str, "filelist: the test list.", panel=GRID, target="runtime.test_list"),
    _opt("val_list", str, "filelist: a validation list (C of the linear probe is chosen on it).",
         panel=GRID, target="runtime.val_list"),
    _opt("dataset_label", str, 'How tables name the data, e.g. "CIFAR-10 (JPEG)".',
         panel=GRID, target="data.label"),
    _opt("profile", str, "exponential | step (half the classes at n_max / rho) | pareto "
         "(ImageNet-LT's; see --pareto-shape).", panel=GRID, target="imbalance.profile"),
    _opt("pareto_shape", float, "The pareto profile's shape alpha (> 0; default 6, "
         "ImageNet-LT's): smaller puts fewer classes near n_max.", panel=GRID,
         target="imbalance.pareto_shape"),
    _opt("same_size", bool, "Give every ratio the same number of images N (the smallest "
         "subset of the grid), keeping each profile's shape.", panel=GRID),
    _opt("total", int, "N for --same-size (implies it).", panel=GRID, minimum=1),
    _opt("val_per_class", int, "Hold out this many images per class of the train pool as a "
         "balanced validation split before subsampling.", panel=GRID,
         target="data.val_per_class", minimum=1),
    _opt("probe_per_class", int, "Fit the probes on this many images per class of the "
         "balanced pool (one seeded draw for every run; default: the whole pool).",
         panel=GRID, target="eval.probe_per_class", minimum=1),
    _opt("linear_backend", str, "Who fits the linear probe: auto (scikit-learn up to what it "
         "fits in about a minute, torch beyond, on the GPU when there is one), sklearn, torch.",
         panel=GRID, target="eval.linear_backend", to_config=lambda v: None if v == "auto" else v),
    # -- the setup: overrides of the preset
    _opt("preset", str, "tiny | quick | standard (default: tiny for digits, quick otherwise)."),
    _opt("epochs", int, "Pre-training epochs.", target="train.epochs", minimum=1),
    _opt("batch_size", int, "Global batch size.", target="train.batch_size", minimum=2),
    _opt("lr", float, "Default: the method's rule, 0.06 x batch / 128 (SimSiam: 0.06).",
         target="train.lr", minimum=0),
    _opt("backbone", str, "Any timm model name.", target="model.backbone"),
    _opt("stem", str, "auto | cifar | timm (auto: CIFAR stem for images <= 64 px).",
         target="model.stem"),
    _opt("image_size", int, "Resize images (default: the dataset's).", target="data.image_size",
         minimum=8),
    _opt("n_max", int, "Images of the most frequent class (default: smallest class of the "
         "pool).", target="imbalance.n_max", minimum=1),
    _opt("class_order", str, "index | reverse | random | a permutation like 9,8,...,0.",
         target="imbalance.class_order"),
    # -- the runtime: how runs execute (precision and augment are part of the experiment;
    # "auto" keeps the reference value here and planning resolves it per run: running/fastpath.py)
    _opt("precision", str, "Lightning precision, e.g. 32-true, bf16-mixed (default auto: "
         "bf16-mixed where the device computes bf16 natively, else 32-true).", panel=RUNTIME,
         target="train.precision", to_config=lambda v: PRECISION_ALIASES.get(v, v)),
    _opt("augment", str, "Views: batched (Lightly's transform, per image, on the training "
         "device with kornia) or pil (Lightly's transform per image in DataLoader workers); "
         "default auto: batched when the images are in memory.", panel=RUNTIME,
         target="train.augment", to_config=lambda v: None if v in ("pil", "auto") else v),
    _opt("draws", str, "Random draws of training: keyed (from seed, stage, epoch and image: a "
         "resume or another --num-workers changes nothing; the default) or stream (one stream "
         "per process, as records written before keyed draws; --num-workers 0 only).",
         panel=RUNTIME, target="train.draws"),
    _opt("channels_last", bool, "Channels-last (NHWC) memory format for the model (default: "
         "on).", panel=RUNTIME, target="runtime.channels_last"),
    _opt("compile", bool, "torch.compile the backbone.", panel=RUNTIME,
         target="runtime.compile"),
    _opt("accelerator", str, "Lightning accelerator (auto, cpu, gpu).", panel=RUNTIME,
         target="runtime.accelerator"),
    _opt("devices", int, "Devices per run (and node); > 1 trains with DDP, --batch-size stays "
         "global.", panel=RUNTIME, target="runtime.devices", minimum=1),
    _opt("num_nodes", int, "Nodes per run (DDP).", panel=RUNTIME, target="runtime.num_nodes",
         minimum=1),
    _opt("strategy", str, "Lightning strategy (auto = ddp on several devices).", panel=RUNTIME,
         target="runtime.strategy"),
    _opt("sync_batchnorm", bool, "SyncBatchNorm across DDP processes.", panel=RUNTIME,
         target="runtime.sync_batchnorm"),
    _opt("num_workers", int, "DataLoader workers.", panel=RUNTIME, target="runtime.num_workers",
         minimum=0),
    _opt("logger", str, "Training logs under <out>/logs/<run_id>/: csv (metrics.csv, the "
         "default), tensorboard or wandb (optional extras), none.", panel=RUNTIME,
         target="runtime.logger"),
    _opt("monitor_every", int, "Online kNN of the backbone every N epochs of a stage, on a small "
         "balanced bank and test share (default: about 10 points per stage; 0: off); the "
         "record gets metrics.knn_curve and knn_top1_best.", panel=RUNTIME,
         target="runtime.monitor_every", minimum=0),
    _opt("streaming", bool, "Decode images from their files in the DataLoader workers "
         "(--streaming) or once into memory (--in-memory); default: in memory when they are "
         "squares of one size within the RAM budget ($IMBSSL_BENCH_RAM_BUDGET, default half "
         "the RAM).", panel=RUNTIME, target="runtime.streaming",
         flags=("--streaming/--in-memory",)),
)  # fmt: skip
BY_NAME = {o.name: o for o in OPTIONS}

GridSpec = dataclasses.make_dataclass(
    "GridSpec",
    sorted((o.spec_field() for o in OPTIONS), key=lambda f: f[2] is not dataclasses.MISSING),
    frozen=True,
)
GridSpec.__module__ = __name__
GridSpec.__doc__ = """What the user asked for, one field per grid option (`OPTIONS`); ``None``
fields fall back to the preset, then the defaults."""


def apply_options(cfg: Any, spec: Any) -> Any:
    """`cfg` (a `RunConfig`) with every option of `spec` that has a config target and a value."""
    for option in OPTIONS:
        value = getattr(spec, option.name)
        if option.target is None or value is None:
            continue
        section, key = option.target.split(".")
        value = option.to_config(value) if option.to_config else value
        part = dataclasses.replace(getattr(cfg, section), **{key: value})
        cfg = dataclasses.replace(cfg, **{section: part})
    return cfg


def build_spec(file_values: dict[str, Any], flags: dict[str, Any]) -> Any:
    """A `GridSpec` from defaults < grid-file values < flags (flags: the options given, as
    the command line parsed them, dict options as dicts); tables merge key by key."""
    merged = {o.name: o.default for o in OPTIONS if o.default is not None}
    merged.update(file_values)
    merged.update(flags)
    for option in OPTIONS:
        if option.kind is dict:
            merged[option.name] = {
                **file_values.get(option.name, {}),
                **flags.get(option.name, {}),
            }
    if "methods" not in merged:
        raise UserError("no method given; pass --method (e.g. simsiam) or a --config grid file")
    values = {k: v if v is None else BY_NAME[k].check(v) for k, v in merged.items()}
    return GridSpec(**values)


__all__ = ["BY_NAME", "OPTIONS", "GridOption", "GridSpec", "apply_options", "build_spec"]
