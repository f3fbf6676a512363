"""The listings (`methods`, `variants`, `datasets`) without importing torch: a listing's rows
are cached under a hash of the code they come from (each entry point's distribution, version
and Python files, and imbssl-bench's own files), so a listing imports the plugins, and with
them torch, only when one of them changed since it last ran."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from typing import Any

from imbssl_bench.errors import UserError
from imbssl_bench.files import cache_dir, write_text_atomic
from imbssl_bench.registry import (
    GROUPS,
    group_entry_points,
    own_source_hash,
    plugin_source,
    source_hash,
)

Rows = list[dict[str, Any]]


def _code_key(kind: str) -> str | None:
    """A hash of all the code a listing of `kind` ("method", "variant", "dataset") shows:
    imbssl-bench's and each plugin's (None: some of it cannot be read)."""
    eps = (
        sorted(group_entry_points(kind), key=lambda e: (e.name, e.value)) if kind in GROUPS else []
    )
    plugins = [ep for ep in eps if plugin_source(ep, ep.name) is not None]  # built-ins: own
    hashes = [own_source_hash(), *(source_hash(ep) for ep in plugins)]
    if None in hashes:
        return None
    meta = [
        [ep.name, ep.value, ep.dist and ep.dist.name, ep.dist and ep.dist.version] for ep in eps
    ]
    blob = json.dumps([kind, hashes, meta])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached_rows(kind: str, fresh: Callable[[], Rows]) -> Rows:
    """The listing of `kind`: from the cache when its code is unchanged, else `fresh()` (which
    imports what it lists), cached when no row has an error (a broken plugin's error may
    depend on what is installed beside it)."""
    key = _code_key(kind)
    path = cache_dir() / "listings" / f"{kind}-{key}.json"
    if key is not None and path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # a damaged cache file: list afresh and rewrite it
    rows = fresh()
    if key is not None and not any(r.get("error") for r in rows):
        with contextlib.suppress(OSError, UserError):  # read-only: list afresh each time
            write_text_atomic(path, json.dumps(rows))
    return rows
