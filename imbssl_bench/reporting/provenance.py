"""What code produced a row's records: a row whose records come from more than one code commit
(the record's ``env.code`` and every ``version@commit`` in ``train.trained_by``, a resumed run
listing each process that trained it) or library version (``env.packages``) gets a † and a
footnote naming what differs: records of identical training from different commits have
linear probes up to 0.09 points apart, so such a row's spread is not only the seeds'."""

from __future__ import annotations

from typing import Any

LIBRARIES = ("torch", "torchvision", "lightly", "timm", "pytorch-lightning")  # env.packages


def _short(commit: str | None) -> str:
    """A commit as tables show it: 7 hex digits, ``-dirty`` kept; "unknown" when unset.

    Examples:
        >>> _short("cb9182c16f45ed0fff2d51767ace23b1f68e46f4-dirty"), _short(None)
        ('cb9182c-dirty', 'unknown')
    """
    if not commit or commit == "unknown":
        return "unknown"
    return commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")


def code_of(record: dict[str, Any]) -> set[tuple[str, str]]:
    """(version, short commit) of the code that wrote `record` and of each process that
    trained it (a bare "unknown" in ``trained_by``: a checkpoint from before it was kept)."""
    code = record.get("env", {}).get("code") or {}
    codes = {(code.get("version") or "unknown", _short(code.get("commit")))}
    for entry in (record.get("train") or {}).get("trained_by") or ():
        version, _, commit = entry.rpartition("@")
        codes.add((version or "unknown", _short(commit)))
    return codes


def _package(record: dict[str, Any], name: str) -> str:
    return (record.get("env", {}).get("packages") or {}).get(name) or "unknown"


def mixed_code(records: list[dict[str, Any]]) -> list[str]:
    """What differs among `records` in the code and libraries that produced them, e.g.
    ``["commits d0b62db, ef3945c", "torch 2.13.0 / 2.14.1"]``; [] when nothing does."""
    codes = set().union(*(code_of(r) for r in records))
    versions = sorted({version for version, _ in codes})
    commits = sorted({commit for _, commit in codes})
    parts = [f"imbssl-bench {' / '.join(versions)}"] if len(versions) > 1 else []
    parts += [f"commits {', '.join(commits)}"] if len(commits) > 1 else []
    for lib in LIBRARIES:
        found = sorted({_package(r, lib) for r in records})
        parts += [f"{lib} {' / '.join(found)}"] if len(found) > 1 else []
    return parts


def footnote(mixed: dict[str, list[str]]) -> list[str]:
    """The lines under a table for `mixed` (a row's name -> `mixed_code` of its records): one
    per row that mixes code, naming what differs; [] when none does."""
    items = [f"- {name}: {'; '.join(parts)}" for name, parts in mixed.items() if parts]
    if not items:
        return []
    head = "† Rows whose records come from more than one code commit or library version:"
    return [head, "", *items, ""]
