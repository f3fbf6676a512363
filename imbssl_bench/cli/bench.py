"""``imbssl-bench bench``: measure the harness (pre-training throughput)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from imbssl_bench.cli.app import app, out

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
    precision: Annotated[
        str, typer.Option(help="Lightning precision; auto: as `run` (bf16-mixed where native).")
    ] = "auto",
    augment: Annotated[
        str, typer.Option(help="auto (as `run`: batched), batched or pil (see `run --help`).")
    ] = "auto",
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last")] = True,
    compile_backbone: Annotated[bool, typer.Option("--compile/--no-compile")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Steady-state pre-training images/s of the real training step (views, DataLoader,
    LightningModule, Trainer) on synthetic images, after a warm-up; by default on the path
    `run` takes by default."""
    from imbssl_bench.running.fastpath import resolve_auto
    from imbssl_bench.training.throughput import ThroughputSettings, measure_throughput

    augment, precision = resolve_auto(method, image_size, accelerator, augment, precision)
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
        f"{batch_size}, {steps} steps after {warmup}, {augment} views, {precision}"
        f"{', channels-last' if channels_last else ''}, {result['device']})"
    )
