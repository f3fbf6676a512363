"""Per-file facts (content hashes, image sizes), computed once and cached by path, size, mtime,
ctime and inode.

The cache is one small JSON file per data folder in the user's cache directory
(``$IMBSSL_BENCH_CACHE``, else ``$XDG_CACHE_HOME/imbssl-bench``, else ``~/.cache/imbssl-bench``),
never inside the data tree, which may be read-only. A file whose size, mtime, ctime or inode
changed is hashed again (the ctime cannot be set back, as ``cp -p``, ``rsync -a`` or ``unzip`` do
with the mtime); an unwritable cache only costs the hashing next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imbssl_bench.files import cache_dir

CHUNK = 1 << 20


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _cache_file(folder: Path, kind: str = "files") -> Path:
    key = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"{kind}-{key}.json"


def _read_cache(path: Path) -> dict[str, list]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def per_file(
    folder: Path,
    files: list[Path],
    compute: Callable[[Path], Any],
    kind: str,
    valid: Callable[[Any], bool],
) -> list[tuple[int, Any]]:
    """(size, ``compute(file)``) of each of `files` under `folder`, in order, cached per file
    state in the folder's `kind` cache (JSON values; a cached value that is not `valid` is
    computed again). The cache keeps the files of every call (e.g. two lists over one
    folder); a missing file is a `UserError` naming it."""
    cache_path = _cache_file(folder, kind)
    cached = _read_cache(cache_path)
    keys = [f.relative_to(folder).as_posix() for f in files]
    stats = [_stat_key(_stat(f)) for f in files]
    pairs = zip(keys, stats, strict=True)
    fresh = {k: cached[k] for k, st in pairs if _hit(cached.get(k), st, valid)}
    stale = [i for i, k in enumerate(keys) if k not in fresh]
    cache = {**cached, **fresh}  # other files of the folder (another list over it) stay
    with ThreadPoolExecutor(max_workers=8) as pool:
        values = pool.map(compute, [files[i] for i in stale], chunksize=64)
        for i, value in zip(stale, values, strict=True):
            cache[keys[i]] = [*stats[i], value]
    if stale:
        _write_cache(cache_path, cache)
    return [(st[0], cache[k][-1]) for k, st in zip(keys, stats, strict=True)]


def file_hashes(folder: Path, files: list[Path]) -> list[tuple[int, str]]:
    """(size, blake2b hex digest) of each of `files` under `folder`, in order (`per_file`)."""
    return per_file(folder, files, _digest, "files", lambda v: isinstance(v, str))


def _stat(path: Path) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        from imbssl_bench.errors import UserError

        raise UserError(
            f"cannot read '{path}' ({exc.strerror}); check --data-root and that the file exists"
        ) from None


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _hit(entry: object, key: list[int], valid: Callable[[Any], bool]) -> bool:
    """A cache entry ``[*key, value]`` for this exact file state (other shapes: a miss)."""
    return (
        isinstance(entry, list)
        and len(entry) == len(key) + 1
        and entry[:-1] == key
        and valid(entry[-1])
    )


def _write_cache(path: Path, cache: dict[str, list]) -> None:
    from imbssl_bench.errors import UserError
    from imbssl_bench.files import write_text_atomic

    with contextlib.suppress(OSError, UserError):  # a read-only home: hash again next time
        write_text_atomic(path, json.dumps(cache, separators=(",", ":")))


def tree_fingerprint(folder: Path, files: list[Path]) -> str:
    """One hash of the relative names, sizes and content hashes of `files` under `folder`."""
    h = hashlib.sha256()
    for f, (size, digest) in zip(files, file_hashes(folder, files), strict=True):
        h.update(f"{Path(f).relative_to(folder).as_posix()}\t{size}\t{digest}\n".encode())
    return h.hexdigest()[:12]
