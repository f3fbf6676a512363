"""The ``imbssl-bench`` command line: parses options and calls library functions.

Results go to stdout (rich tables, or JSON with ``--json``); progress and diagnostics go to
stderr. Every user mistake ends as one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from imbssl_bench.errors import UserError

app = typer.Typer(
    name="imbssl-bench",
    help="Benchmark self-supervised learning on class-imbalanced image data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, log_path=False, soft_wrap=True)  # one message, one line

GRID = "Grid"
SETUP = "Setup (override the preset)"
RUNTIME = "Runtime"
VARIANT = "Variant options (cluster-distill, sam, rwsam, rwsam-oracle)"


@app.command()
def run(
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            "-m",
            help="Methods, comma list (see `imbssl-bench methods`).",
            rich_help_panel=GRID,
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            help="A grid file (TOML), or the name of a packaged grid (`imbssl-bench grids`); "
            "flags override its keys.",
            rich_help_panel=GRID,
        ),
    ] = None,
    ratios: Annotated[
        str | None,
        typer.Option(
            help="Imbalance ratios rho = n_max/n_min, comma list [default: 1,10,100].",
            rich_help_panel=GRID,
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="See `imbssl-bench datasets` [default: digits].", rich_help_panel=GRID),
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option(help="Folder of the dataset.", rich_help_panel=GRID)
    ] = None,
    dataset_label: Annotated[
        str | None,
        typer.Option(
            help='How tables name the data, e.g. "CIFAR-10 (JPEG)".', rich_help_panel=GRID
        ),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Seeds, comma list [default: 0].", rich_help_panel=GRID)
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(help="Variants, comma list [default: base].", rich_help_panel=GRID),
    ] = None,
    method_arg: Annotated[
        list[str] | None,
        typer.Option(
            help="A method hyperparameter, key=value (repeatable), e.g. temperature=0.2; "
            "`imbssl-bench methods --args` lists them.",
            rich_help_panel=GRID,
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="tiny | quick | standard (default: tiny for digits, quick otherwise).",
            rich_help_panel=SETUP,
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, rich_help_panel=SETUP)] = None,
    batch_size: Annotated[int | None, typer.Option(min=2, rich_help_panel=SETUP)] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Default: the method's rule, 0.06 x batch / 128 (SimSiam: 0.06).",
            rich_help_panel=SETUP,
        ),
    ] = None,
    backbone: Annotated[
        str | None, typer.Option(help="Any timm model name.", rich_help_panel=SETUP)
    ] = None,
    stem: Annotated[
        str | None,
        typer.Option(
            help="auto | cifar | timm (auto: CIFAR stem for images <= 64 px).",
            rich_help_panel=SETUP,
        ),
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(min=8, help="Resize images (default: the dataset's).", rich_help_panel=SETUP),
    ] = None,
    n_max: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Images of the most frequent class (default: smallest class of the pool).",
            rich_help_panel=SETUP,
        ),
    ] = None,
    class_order: Annotated[
        str | None,
        typer.Option(
            help="index | reverse | random | a permutation like 9,8,...,0.", rich_help_panel=SETUP
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            help="exponential | step (half the classes at n_max / rho).", rich_help_panel=GRID
        ),
    ] = None,
    same_size: Annotated[
        bool | None,
        typer.Option(
            "--same-size/--no-same-size",
            help="Give every ratio the same number of images N (the "
            "smallest subset of the grid), keeping each profile's shape.",
            rich_help_panel=GRID,
        ),
    ] = None,
    val_per_class: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Hold out this many images per class of the train pool as a "
            "balanced validation split before subsampling.",
            rich_help_panel=GRID,
        ),
    ] = None,
    probe_per_class: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Fit the probes on this many images per class of the balanced pool "
            "(one seeded draw for every run; default: the whole pool).",
            rich_help_panel=GRID,
        ),
    ] = None,
    total: Annotated[
        int | None,
        typer.Option(min=1, help="N for --same-size (implies it).", rich_help_panel=GRID),
    ] = None,
    clusters: Annotated[
        int | None,
        typer.Option(min=1, help="k-means clusters (default: classes).", rich_help_panel=VARIANT),
    ] = None,
    expert_steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="SGD steps of each expert, in whole passes over its cluster (default: the "
            "base's steps / the experts).",
            rich_help_panel=VARIANT,
        ),
    ] = None,
    min_cluster_size: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Smaller clusters merge into their nearest one (default 32).",
            rich_help_panel=VARIANT,
        ),
    ] = None,
    student_epochs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Distillation epochs (default: the epochs).", rich_help_panel=VARIANT
        ),
    ] = None,
    student_init: Annotated[
        str | None,
        typer.Option(help="base | scratch (default: base).", rich_help_panel=VARIANT),
    ] = None,
    distill_weight: Annotated[
        float | None,
        typer.Option(
            help="Lambda of SSL + lambda * distillation (default 1).", rich_help_panel=VARIANT
        ),
    ] = None,
    sam_rho: Annotated[
        float | None,
        typer.Option(help="SAM neighbourhood radius (default 0.5).", rich_help_panel=VARIANT),
    ] = None,
    sam_adaptive: Annotated[
        bool | None,
        typer.Option(
            "--sam-adaptive/--no-sam-adaptive",
            help="Adaptive SAM (ASAM) perturbation (default: on, as the rwSAM code).",
            rich_help_panel=VARIANT,
        ),
    ] = None,
    rwsam_warmup: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Epochs with weights 1 before the first KDE (default: a fifth).",
            rich_help_panel=VARIANT,
        ),
    ] = None,
    rwsam_refresh: Annotated[
        int | None,
        typer.Option(
            min=1, help="Epochs between KDE refreshes (default: a tenth).", rich_help_panel=VARIANT
        ),
    ] = None,
    rwsam_k: Annotated[
        int | None,
        typer.Option(min=1, help="Neighbours of the KDE (default 20).", rich_help_panel=VARIANT),
    ] = None,
    rwsam_alpha: Annotated[
        float | None,
        typer.Option(help="weight = density^-alpha (default 1).", rich_help_panel=VARIANT),
    ] = None,
    rwsam_weights: Annotated[
        str | None,
        typer.Option(
            help="inloop: KDE on the model being trained, refreshed (default); offline: once "
            "from the base run's features, then fixed (the reference code's mode).",
            rich_help_panel=VARIANT,
        ),
    ] = None,
    matched_factor: Annotated[
        float | None,
        typer.Option(
            help="matched: train base this many times as long (default: as the grid's "
            "costliest other variant of the same method, ratio and seed).",
            rich_help_panel=VARIANT,
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="Lightning precision, e.g. bf16-mixed.", rich_help_panel=RUNTIME),
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(
            help="Views: pil (Lightly's transform per image, default) or batched (the same "
            "parameters, per image, on the training device with kornia).",
            rich_help_panel=RUNTIME,
        ),
    ] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="Channels-last (NHWC) memory format for the model.",
            rich_help_panel=RUNTIME,
        ),
    ] = None,
    compile_backbone: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile", help="torch.compile the backbone.", rich_help_panel=RUNTIME
        ),
    ] = None,
    accelerator: Annotated[
        str | None,
        typer.Option(help="Lightning accelerator (auto, cpu, gpu).", rich_help_panel=RUNTIME),
    ] = None,
    devices: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Devices per run (and node); > 1 trains with DDP, --batch-size stays global.",
            rich_help_panel=RUNTIME,
        ),
    ] = None,
    num_nodes: Annotated[
        int | None, typer.Option(min=1, help="Nodes per run (DDP).", rich_help_panel=RUNTIME)
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="Lightning strategy (auto = ddp on several devices).", rich_help_panel=RUNTIME
        ),
    ] = None,
    sync_batchnorm: Annotated[
        bool | None,
        typer.Option(
            "--sync-batchnorm/--no-sync-batchnorm",
            help="SyncBatchNorm across DDP processes.",
            rich_help_panel=RUNTIME,
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            min=1,
            help="Runs at once (local launcher), each in its own process and device set.",
            rich_help_panel=RUNTIME,
        ),
    ] = 1,
    launcher: Annotated[
        str,
        typer.Option(
            help="local, or slurm (submitit): one job per run, asking for --devices GPUs "
            "on each of --num-nodes nodes.",
            rich_help_panel=RUNTIME,
        ),
    ] = "local",
    slurm_partition: Annotated[
        str | None, typer.Option(help="Slurm partition.", rich_help_panel=RUNTIME)
    ] = None,
    slurm_time: Annotated[
        int,
        typer.Option(min=1, help="Slurm time limit per run (minutes).", rich_help_panel=RUNTIME),
    ] = 240,
    slurm_cpus: Annotated[
        int, typer.Option(min=1, help="Slurm CPUs per task.", rich_help_panel=RUNTIME)
    ] = 8,
    num_workers: Annotated[
        int | None, typer.Option(min=0, help="DataLoader workers.", rich_help_panel=RUNTIME)
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the records.", rich_help_panel=RUNTIME)
    ] = Path("runs"),
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the planned runs with per-class counts; train nothing."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable output on stdout.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Rerun runs whose record says failed.")
    ] = False,
) -> None:
    """Run a grid of pre-trainings (methods x variants x ratios x seeds), one record each.

    Runs whose record already exists in --out are skipped, so rerunning resumes a grid.
    """
    from imbssl_bench.grid import plan_grid, run_grid, same_size_note
    from imbssl_bench.gridfile import build_spec, find_grid, load_grid_file
    from imbssl_bench.launchers import LAUNCHERS, SlurmOptions

    if launcher not in LAUNCHERS:
        raise UserError(f"--launcher must be one of {', '.join(LAUNCHERS)}, not '{launcher}'")
    from imbssl_bench.parsing import parse_key_values

    flags = {
        "methods": method,
        "ratios": ratios,
        "seeds": seeds,
        "variants": variants,
        "method_args": parse_key_values(method_arg, "--method-arg") if method_arg else None,
        "dataset": dataset,
        "data_root": str(data_root) if data_root else None,
        "dataset_label": dataset_label,
        "preset": preset,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "backbone": backbone,
        "stem": stem,
        "image_size": image_size,
        "n_max": n_max,
        "class_order": class_order,
        "profile": profile,
        "same_size": same_size,
        "total": total,
        "val_per_class": val_per_class,
        "probe_per_class": probe_per_class,
        "clusters": clusters,
        "expert_steps": expert_steps,
        "min_cluster_size": min_cluster_size,
        "student_epochs": student_epochs,
        "student_init": student_init,
        "distill_weight": distill_weight,
        "sam_rho": sam_rho,
        "sam_adaptive": sam_adaptive,
        "rwsam_warmup": rwsam_warmup,
        "rwsam_refresh": rwsam_refresh,
        "rwsam_k": rwsam_k,
        "rwsam_alpha": rwsam_alpha,
        "matched_factor": matched_factor,
        "rwsam_weights": rwsam_weights,
        "precision": precision,
        "augment": augment,
        "channels_last": channels_last,
        "compile": compile_backbone,
        "accelerator": accelerator,
        "devices": devices,
        "num_nodes": num_nodes,
        "strategy": strategy,
        "sync_batchnorm": sync_batchnorm,
        "num_workers": num_workers,
    }
    spec = build_spec(
        load_grid_file(find_grid(config)) if config else {},
        {k: v for k, v in flags.items() if v is not None},
    )
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out '{out_dir}' is a file; pass a folder for the records")
    plan = plan_grid(spec, out_dir, here=launcher != "slurm")
    if note := same_size_note(spec, plan):
        err.print(note, highlight=False)
    if dry_run:
        _show_plan(plan, as_json)
        return
    from imbssl_bench.console import RichReporter
    from imbssl_bench.records import check_writable

    check_writable(out_dir)

    todo = sum(p.status == "todo" or (retry_failed and p.status == "failed") for p in plan)
    err.print(
        f"{len(plan)} runs planned, {len(plan) - todo} already have a record, "
        f"{todo} to run; records go to {out_dir}/"
    )
    _warn_other_versions(plan, retry_failed)
    try:
        with RichReporter(err) as reporter:
            records = run_grid(
                plan,
                reporter,
                retry_failed=retry_failed,
                jobs=jobs,
                launcher=launcher,
                slurm=SlurmOptions(slurm_partition, slurm_time, slurm_cpus),
            )
    except KeyboardInterrupt:
        err.print("interrupted: finished runs have their records; rerun the same command to resume")
        raise typer.Exit(130) from None
    _show_results(records, as_json)
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        err.print(
            f"[red]{len(failed)} run(s) failed[/]; their records hold the errors "
            "(rerun with --retry-failed)"
        )
        raise typer.Exit(1)


def _warn_other_versions(plan: list[Any], retry_failed: bool) -> None:
    """One line when records that this run keeps were written by another package version."""
    from imbssl_bench import __version__
    from imbssl_bench.records import other_versions

    kept = [p.path for p in plan if p.status == "ok" or (p.status == "failed" and not retry_failed)]
    other = other_versions(kept, __version__)
    if other:
        which = ", ".join(f"{n} by {v}" for v, n in sorted(other.items()))
        folder = plan[0].path.parent
        err.print(
            f"[yellow]{sum(other.values())} of the {len(kept)} skipped records were written by "
            f"another version than {__version__}[/] ({which}); move them out of {folder}/ to "
            "rerun them"
        )


def _variant_text(s: dict[str, Any], variants: dict[str, str]) -> str:
    """The variant of a planned run; `matched` with its factor and the variants it matches
    (`variants`: the plan's run ids to their variant names)."""
    factor = s["variant_args"].get("matched_factor") if s["variant"] == "matched" else None
    if factor is None:
        return s["variant"]
    to = sorted({variants.get(run_id, run_id) for run_id in s["matched_to"]})
    return f"matched ×{factor:g}" + (f" ({', '.join(to)})" if to else "")


def _show_plan(plan: list[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"runs": [p.summary() for p in plan]}, indent=2))
        return
    table = Table(title=f"{len(plan)} planned runs (n_train: images in the subset)")
    for col in ("method", "variant", "ratio", "seed", "n_train", "status"):
        table.add_column(col, no_wrap=True)
    table.add_column("class counts")
    variants = {p.run_id: p.config.variant for p in plan}
    for p in plan:
        s = p.summary()
        table.add_row(
            s["method"],
            _variant_text(s, variants),
            f"{s['ratio']:g}",
            str(s["seed"]),
            str(s["n_train"]),
            s["status"],
            " ".join(map(str, s["class_counts"])),
        )
    out.print(table)


def _show_results(records: list[dict[str, Any]], as_json: bool) -> None:
    rows = []
    for r in records:
        m = r.get("metrics") or {}
        rows.append(
            {
                "run_id": r["run_id"],
                "method": r["method"],
                "variant": r["variant"],
                "ratio": r["ratio"],
                "seed": r["seed"],
                "status": r["status"],
                "linear_top1": m.get("linear_top1"),
                "knn_top1": m.get("knn_top1"),
                "few": (m.get("group_acc") or {}).get("few"),
                "wall_s": r["wall_s"],
                "error": r.get("error"),
            }
        )
    if as_json:
        print(json.dumps({"results": rows}, indent=2))
        return
    table = Table(title="top-1 on the balanced test set")
    for col in ("method", "variant", "ratio", "seed", "status", "linear", "kNN", "few", "s"):
        table.add_column(col)

    def fmt(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    for row in rows:
        table.add_row(
            row["method"],
            row["variant"],
            f"{row['ratio']:g}",
            str(row["seed"]),
            row["status"],
            fmt(row["linear_top1"]),
            fmt(row["knn_top1"]),
            fmt(row["few"]),
            f"{row['wall_s']:.0f}" if row["wall_s"] is not None else "–",
        )
    out.print(table)


@app.command()
def leaderboard(
    results: Annotated[Path, typer.Option(help="Folder of records.")] = Path("leaderboard/results"),
    out_file: Annotated[Path, typer.Option("--out", help="Markdown file to write.")] = Path(
        "leaderboard/README.md"
    ),
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 1 with a diff when --out is not what the records give; write nothing.",
        ),
    ] = False,
) -> None:
    """Turn records into a markdown leaderboard (or check that it is up to date)."""
    from imbssl_bench.files import write_text_atomic
    from imbssl_bench.reporting import leaderboard as lb

    if check:
        diff = lb.check(results, out_file)
        if diff:
            sys.stdout.write(diff)
            err.print(
                f"[red]{out_file} is stale[/]: regenerate it with `imbssl-bench "
                f"leaderboard --results {results} --out {out_file}` and commit it"
            )
            raise typer.Exit(1)
        err.print(f"{out_file} is up to date with {results}/")
        return
    from imbssl_bench.records import load_records
    from imbssl_bench.reporting.plots import write_plots

    records = load_records(results)
    old = out_file.read_text() if out_file.is_file() else ""
    text = lb.render(records)
    write_text_atomic(out_file, text)
    plots = write_plots(records, out_file.parent)
    for link in set(lb.plot_links(old)) - set(lb.plot_links(text)):  # tables that are gone
        (out_file.parent / link).unlink(missing_ok=True)
    err.print(f"wrote {out_file}" + (f" and {len(plots)} plot(s)" if plots else ""))


@app.command()
def methods(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    show_args: Annotated[
        bool, typer.Option("--args", help="Also list each method's options and defaults.")
    ] = False,
) -> None:
    """List the methods found through the `imbssl_bench.methods` entry points."""
    import dataclasses

    from imbssl_bench.methods import list_methods

    def defaults(cls: Any) -> dict[str, Any]:
        return dataclasses.asdict(cls.make_args()) if cls else {}

    infos = list_methods()
    if as_json:
        rows = [
            {
                "name": i.name,
                "origin": i.origin,
                "version": i.version,
                "description": i.description,
                "per_example_loss": i.cls.has_per_example_loss() if i.cls else None,
                "args": defaults(i.cls),
                "error": i.error,
            }
            for i in infos
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="methods (per-example loss: the rwsam variants can re-weight it)")
    for col in ("name", "origin", "version", "per-example loss", "description"):
        table.add_column(col)
    for i in infos:
        text = i.description if i.error is None else f"[red]failed to load: {i.error}"
        if show_args and i.cls:
            text += "\n" + " ".join(f"{k}={v}" for k, v in defaults(i.cls).items())
        per_example = "" if i.cls is None else ("yes" if i.cls.has_per_example_loss() else "no")
        table.add_row(i.name, i.origin, i.version, per_example, text)
    out.print(table)


@app.command()
def datasets() -> None:
    """List the datasets and what each needs."""
    from imbssl_bench.data import list_datasets

    table = Table(title="datasets")
    for col in ("name", "description", "needs"):
        table.add_column(col)
    for cls in list_datasets():
        table.add_row(cls.name, cls.description, cls.needs)
    out.print(table)


@app.command()
def variants() -> None:
    """List the variants (wrappers around any method's pre-training)."""
    from imbssl_bench.variants import list_variants

    table = Table(title="variants")
    table.add_column("name")
    table.add_column("description")
    for v in list_variants():
        table.add_row(v.name, v.description)
    out.print(table)


@app.command()
def grids(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the standard grid files shipped with the package (`run --config NAME` runs one)."""
    from imbssl_bench.gridfile import grid_description, packaged_grids

    rows = [
        {"name": name, "description": grid_description(name, f.read_text()), "file": str(f)}
        for name, f in packaged_grids().items()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['description']}")  # one line each, never wrapped


@app.command()
def presets() -> None:
    """List the presets (backbone, image size and budget per run)."""
    from imbssl_bench.presets import PRESETS

    table = Table(title="presets")
    for col in ("name", "backbone", "stem", "epochs", "batch", "description"):
        table.add_column(col)
    for _, p in PRESETS.items():
        table.add_row(p.name, p.backbone, p.stem, str(p.epochs), str(p.batch_size), p.description)
    out.print(table)


bench = typer.Typer(help="Measure the harness: pre-training throughput.", no_args_is_help=True)
app.add_typer(bench, name="bench")


@bench.command()
def throughput(
    method: Annotated[str, typer.Option(help="A registered method.")] = "simclr",
    backbone: Annotated[str, typer.Option(help="A timm model name.")] = "resnet18",
    image_size: Annotated[int, typer.Option(min=8)] = 32,
    batch_size: Annotated[int, typer.Option(min=2)] = 128,
    steps: Annotated[int, typer.Option(min=1, help="Timed steps.")] = 20,
    warmup: Annotated[int, typer.Option(min=1, help="Untimed steps first.")] = 5,
    stem: Annotated[str, typer.Option(help="auto, cifar or timm.")] = "auto",
    num_workers: Annotated[int, typer.Option(min=0, help="DataLoader workers.")] = 0,
    accelerator: Annotated[str, typer.Option(help="Lightning accelerator.")] = "auto",
    precision: Annotated[str, typer.Option(help="Lightning precision.")] = "32-true",
    augment: Annotated[str, typer.Option(help="pil or batched (see `run --help`).")] = "pil",
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last")] = False,
    compile_backbone: Annotated[bool, typer.Option("--compile/--no-compile")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Steady-state pre-training images/s of the real training step (views, DataLoader,
    LightningModule, Trainer) on synthetic images, after a warm-up."""
    from imbssl_bench.training.throughput import ThroughputSettings, measure_throughput

    settings = ThroughputSettings(
        method, backbone, stem, image_size, batch_size, steps, warmup, num_workers,
        accelerator, precision, augment, channels_last, compile_backbone,
    )  # fmt: skip
    result = measure_throughput(settings)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out.print(
        f"{result['images_per_s']:.1f} images/s ({method}, {backbone} {image_size} px, batch "
        f"{batch_size}, {steps} steps after {warmup}, {result['device']})"
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user mistakes become one ``error:`` line and exit code 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="imbssl-bench", standalone_mode=False)
    except UserError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except typer.TyperException as exc:  # usage errors from option parsing
        if type(exc).__name__ == "NoArgsIsHelpError":
            err.print(exc.format_message(), highlight=False)
            return 0
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = " ".join(exc.format_message().split())
        err.print(f"[red]error:[/] {escape(message + where)}", highlight=False, soft_wrap=True)
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        err.print("aborted")
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
