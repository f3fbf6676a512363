"""Published subsets (``--split-file F``): the train images of a long-tailed split as a file,
instead of a subset drawn by the harness, so that numbers compare with papers that used the
same file (e.g. SDCLR's CIFAR-10-LT splits, lists of indices into CIFAR-10's train set).

One entry per line (or whitespace-separated): an index into the dataset's train split, in the
dataset's order (torchvision's for ``cifar10``; class folder then file name for
``imagefolder``), or a path relative to ``--data-root`` (datasets of files). ``#`` starts a
comment. The record keeps the file's name and the hash of its content.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbssl_bench.data.base import DatasetSource
from imbssl_bench.data.files import FileDataset
from imbssl_bench.errors import UserError


@dataclass(frozen=True)
class SplitFile:
    name: str  # the file's stem, how tables name the split
    hash: str  # sha256 of its content, 12 hex digits
    indices: np.ndarray  # sorted indices into the dataset's train split

    def counts(self, targets: np.ndarray, num_classes: int) -> list[int]:
        return np.bincount(targets[self.indices], minlength=num_classes).tolist()


def _entries(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read --split-file '{path}' ({exc.strerror})") from None
    return [tok for line in text.splitlines() for tok in line.split("#")[0].split()]


def _by_path(source: DatasetSource) -> dict[str, int]:
    if not isinstance(source, FileDataset):
        raise UserError(
            f"--split-file lists paths, but dataset '{source.name}' has no files; list train "
            "indices instead (one integer per line)"
        )
    files = source.load("streaming").train.files  # type: ignore[union-attr]
    return {name: i for i, name in enumerate(files)}


def read_split_file(path_text: str, source: DatasetSource) -> SplitFile:
    """The split in `path_text` as sorted train indices of `source`; every mistake (unknown
    entry, index out of range, duplicate, empty file) is a one-line `UserError`."""
    path = Path(path_text).expanduser()
    entries = _entries(path)
    if not entries:
        raise UserError(f"--split-file '{path}' lists no images")
    n = len(source.train_targets())
    lookup = None if all(e.isdigit() for e in entries) else _by_path(source)
    indices = []
    for entry in entries:
        index = int(entry) if lookup is None else lookup.get(entry.removeprefix("./"), -1)
        if not 0 <= index < n:
            what = (
                f"index {entry} is outside 0..{n - 1}"
                if lookup is None
                else (f"'{entry}' is not a train image under --data-root")
            )
            raise UserError(f"--split-file '{path}': {what} of dataset '{source.name}'")
        indices.append(index)
    unique = np.unique(np.asarray(indices, dtype=np.int64))
    if len(unique) != len(indices):
        raise UserError(f"--split-file '{path}' lists {len(indices) - len(unique)} image(s) twice")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return SplitFile(path.stem, digest, unique)
