"""Rich progress for the CLI: a bar over the grid's runs and one over the current run."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class RichReporter:
    """A `Reporter` drawing live bars on stderr and logging one line per finished run."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.grid: TaskID | None = None
        self.run: TaskID | None = None
        self.label = ""

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def run_started(self, index: int, total: int, label: str) -> None:
        if self.grid is None:
            self.grid = self.progress.add_task("runs", total=total, info="")
        self.label = label
        self.progress.update(self.grid, completed=index, info=label)
        self.stage("starting")

    def stage(self, name: str, total: int | None = None) -> None:
        if self.run is not None:  # a fresh task: rich cannot reset a total back to unknown
            self.progress.remove_task(self.run)
        self.run = self.progress.add_task(f"  {name}", total=total, info="")

    def advance(self, info: str = "") -> None:
        if self.run is not None:
            self.progress.update(self.run, advance=1, info=info)

    def note(self, message: str) -> None:
        self.console.log(escape(f"{self.label}: {message}"), highlight=False)

    def run_finished(self, record: dict[str, Any]) -> None:
        if self.grid is not None:
            self.progress.advance(self.grid)
        r = record
        name = f"{r['method']}/{r['variant']} ratio {r['ratio']:g} seed {r['seed']}"
        if record["status"] == "ok":
            m = record["metrics"]
            self.console.log(
                f"[green]done[/] {name}: linear {m['linear_top1']:.3f}, kNN {m['knn_top1']:.3f}"
                f" ({record['wall_s']:.0f} s)",
                highlight=False,
            )
        else:
            detail = escape(f"{name}: {record['error']}")
            self.console.log(f"[red]failed[/] {detail}", highlight=False)
