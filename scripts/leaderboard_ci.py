"""The steps of the leaderboard workflow (.github/workflows/leaderboard.yml), runnable locally.

    python scripts/leaderboard_ci.py install   # the package, without its heavy dependencies
    python scripts/leaderboard_ci.py review    # pull request: validate, regenerate, summarise
    python scripts/leaderboard_ci.py publish   # main: validate, regenerate, commit if changed

Run them from the repository's root (any checkout with leaderboard/results/). `review` writes the
leaderboard tables that the change adds, changes or removes to $GITHUB_STEP_SUMMARY (to stdout
when unset). `publish` commits leaderboard/README.md and its plots as the GitHub Actions bot
with "[skip ci]" in the message (no workflow runs on that commit), and pushes with `--push`.
Both exit 1, naming each bad record, when `imbssl-bench leaderboard --validate` fails.
Standard library only: the leaderboard itself needs no torch.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

RESULTS = "leaderboard/results"
MARKDOWN = "leaderboard/README.md"
PLOTS = "leaderboard/plots"
# What `imbssl-bench leaderboard` imports beyond the standard library (tests/test_leaderboard_ci.py
# checks these against pyproject.toml's dependencies).
LEADERBOARD_DEPS = ("typer>=0.12", "rich>=13", "matplotlib>=3.7", "numpy>=1.24")
BOT = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")
MESSAGE = "leaderboard: regenerated from the records [skip ci]"


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=check, text=True, stdout=subprocess.PIPE)


def leaderboard(*flags: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cli = (sys.executable, "-m", "imbssl_bench.cli", "leaderboard")
    return run(*cli, "--results", RESULTS, "--out", MARKDOWN, *flags, check=check)


def install() -> None:
    pip = (sys.executable, "-m", "pip", "install", "--quiet")
    run(*pip, "--no-deps", "-e", ".")
    run(*pip, *LEADERBOARD_DEPS)


def sections(markdown: str) -> dict[str, str]:
    """The leaderboard's tables by their ``## `` heading."""
    parts = re.split(r"^(?=## )", markdown, flags=re.M)
    return {p.splitlines()[0]: p.rstrip() + "\n" for p in parts if p.startswith("## ")}


def summary(before: str, after: str) -> str:
    """Markdown: the tables that are new or changed (as they are now), and those removed."""
    old, new = sections(before), sections(after)
    changed = [new[h] for h in new if old.get(h) != new[h]]
    removed = [h for h in old if h not in new]
    if not changed and not removed:
        return "## Leaderboard\n\nThe records change no table.\n"
    lines = [f"## Leaderboard: {len(changed)} table(s) new or changed, {len(removed)} removed\n"]
    lines += [f"Removed: {h[3:]}\n" for h in removed]
    return "\n".join(lines + changed)


def regenerate() -> str:
    """Validate the records (exit 1 naming each bad one), then rewrite the markdown and plots;
    returns the markdown as it was before."""
    if leaderboard("--validate", check=False).returncode != 0:
        sys.exit(1)
    path = Path(MARKDOWN)
    before = path.read_text() if path.is_file() else ""
    leaderboard()
    return before


def review() -> None:
    before = regenerate()
    text = summary(before, Path(MARKDOWN).read_text())
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def generated_paths() -> list[str]:
    """The markdown, and the plots folder when it exists or git tracks files in it."""
    tracked = run("git", "ls-files", "--", PLOTS).stdout.strip()
    return [MARKDOWN, *([PLOTS] if Path(PLOTS).exists() or tracked else [])]


def publish(push: bool) -> None:
    """Commit only the generated files (nothing else staged in the checkout goes with them)."""
    regenerate()
    paths = generated_paths()
    run("git", "add", "--all", "--", *paths)
    if run("git", "diff", "--cached", "--quiet", "--", *paths, check=False).returncode == 0:
        print("the leaderboard is up to date: nothing to commit", file=sys.stderr)
        return
    name, email = BOT
    identity = ("-c", f"user.name={name}", "-c", f"user.email={email}")
    run("git", *identity, "commit", "--quiet", "-m", MESSAGE, "--", *paths)
    if push:  # onto whatever reached main meanwhile; its own run regenerates after it
        run("git", "pull", "--rebase", "--quiet")
        run("git", "push")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    steps.add_parser("install", help="install the package and only what the leaderboard needs")
    steps.add_parser("review", help="validate, regenerate, summarise the changed tables")
    publish_parser = steps.add_parser("publish", help="validate, regenerate, commit if changed")
    publish_parser.add_argument("--push", action="store_true", help="push the commit")
    args = parser.parse_args(argv)
    if args.step == "install":
        install()
    elif args.step == "review":
        review()
    else:
        publish(args.push)


if __name__ == "__main__":
    main()
