"""The ``imbssl-bench`` Typer app, its consoles and the console entry point `main`.

Results go to stdout (rich tables, or JSON with ``--json``); progress and diagnostics go to
stderr. Every user mistake ends as one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

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


def _plugin_flag_hint(exc: Exception) -> str:
    """For an unknown flag that names a method's or variant's option (e.g. ``--sam-rho``,
    a flag of earlier versions): how to pass it."""
    name = getattr(exc, "option_name", None)
    if not name or not name.startswith("--"):
        return ""
    from imbssl_bench.running.gridfile import option_owner

    key = name[2:].replace("-", "_")
    owner = option_owner(key)
    if owner is None:
        return ""
    return f"; '{key}' is an option of {owner}: pass --{owner.split()[0]}-arg {key}=VALUE"


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
        message = " ".join(exc.format_message().split()) + _plugin_flag_hint(exc)
        err.print(f"[red]error:[/] {escape(message + where)}", highlight=False, soft_wrap=True)
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        err.print("aborted")
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
