"""Content hashes of data files, computed once and cached by path, size and mtime.

The cache is one small JSON file per data folder in the user's cache directory
(``$IMBSSL_BENCH_CACHE``, else ``$XDG_CACHE_HOME/imbssl-bench``, else ``~/.cache/imbssl-bench``),
never inside the data tree, which may be read-only. A file whose size or mtime changed is hashed
again; an unwritable cache only costs the hashing next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CACHE_ENV = "IMBSSL_BENCH_CACHE"
CHUNK = 1 << 20


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imbssl-bench"


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _cache_file(folder: Path) -> Path:
    key = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"files-{key}.json"


def _read_cache(path: Path) -> dict[str, list]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def file_hashes(folder: Path, files: list[Path]) -> list[tuple[int, str]]:
    """(size, blake2b hex digest) of each of `files` under `folder`, in order. Pass every file
    of the folder at once: the folder's cache keeps only the files of the last call."""
    cache_path = _cache_file(folder)
    cached = _read_cache(cache_path)
    keys = [f.relative_to(folder).as_posix() for f in files]
    stats = [[st.st_size, st.st_mtime_ns] for st in map(os.stat, files)]
    cache = {k: cached[k] for k, st in zip(keys, stats, strict=True) if cached.get(k, [])[:2] == st}
    stale = [i for i, k in enumerate(keys) if k not in cache]
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = pool.map(_digest, [files[i] for i in stale], chunksize=64)
        for i, digest in zip(stale, digests, strict=True):
            cache[keys[i]] = [*stats[i], digest]
    if cache.keys() != cached.keys() or stale:
        _write_cache(cache_path, cache)
    return [(st[0], cache[k][2]) for k, st in zip(keys, stats, strict=True)]


def _write_cache(path: Path, cache: dict[str, list]) -> None:
    from imbssl_bench.errors import UserError
    from imbssl_bench.records import write_text_atomic

    with contextlib.suppress(OSError, UserError):  # a read-only home: hash again next time
        write_text_atomic(path, json.dumps(cache, separators=(",", ":")))


def tree_fingerprint(folder: Path, files: list[Path]) -> str:
    """One hash of the relative names, sizes and content hashes of `files` under `folder`."""
    h = hashlib.sha256()
    for f, (size, digest) in zip(files, file_hashes(folder, files), strict=True):
        h.update(f"{Path(f).relative_to(folder).as_posix()}\t{size}\t{digest}\n".encode())
    return h.hexdigest()[:12]
