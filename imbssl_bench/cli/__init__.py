"""The ``imbssl-bench`` command line: parses options and calls the library's rooms; one
module per group of commands, all on one Typer `app` (`imbssl_bench.cli.app`)."""

from imbssl_bench.cli import bench, listings, report, run, show  # noqa: F401  (register the commands)
from imbssl_bench.cli.app import app, main

__all__ = ["app", "main"]
