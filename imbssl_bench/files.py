"""Atomic file writes: records, checkpoints, weights, plots and caches are never half-written;
and where the caches live."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from imbssl_bench.errors import UserError

CACHE_ENV = "IMBSSL_BENCH_CACHE"


def cache_dir() -> Path:
    """``$IMBSSL_BENCH_CACHE``, else ``$XDG_CACHE_HOME/imbssl-bench``, else
    ``~/.cache/imbssl-bench``: data-file hashes and plugin listings."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imbssl-bench"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: never a partial file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"'{path}' is a folder; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(
            f"cannot write '{path}' ({exc.strerror}); choose a writable folder"
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; records are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
