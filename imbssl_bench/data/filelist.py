"""Images listed in text files of ``relative/path label`` lines, the format ImageNet-LT and
Places-LT ship (OLTR, Liu et al. 2019): ``--train-list``, ``--test-list`` and optionally
``--val-list``, paths relative to ``--data-root``."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np

from imbssl_bench.data.filehash import tree_fingerprint
from imbssl_bench.data.files import FileDataset
from imbssl_bench.errors import UserError


def read_list(path: Path) -> tuple[list[str], np.ndarray]:
    """(paths, labels) of a ``relative/path label`` list; blank lines are skipped.

    Examples:
        >>> import tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "train.txt")
        >>> _ = open(f, "w").write("train/n01/a.JPEG 0\\ntrain/n02/b.JPEG 1\\n")
        >>> read_list(Path(f))
        (['train/n01/a.JPEG', 'train/n02/b.JPEG'], array([0, 1]))
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read the file list '{path}' ({exc.strerror})") from None
    files, labels = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, _, label = line.strip().rpartition(" ")
        if not name or not label.isdigit():
            raise UserError(
                f"{path}:{number}: expected 'relative/path label' (label an integer >= 0), "
                f"got '{line.strip()[:80]}'"
            )
        name = name.strip()
        if name.startswith("/") or ".." in Path(name).parts:
            raise UserError(
                f"{path}:{number}: '{name}' must be a path relative to --data-root, inside it"
            )
        files.append(name)
        labels.append(int(label))
    if not files:
        raise UserError(f"the file list '{path}' lists no images")
    return files, np.asarray(labels, dtype=np.int64)


class FileList(FileDataset):
    name = "filelist"
    description = (
        "images listed as 'relative/path label' lines (the ImageNet-LT / Places-LT format); "
        "any sizes, streamed when they differ or do not fit in memory"
    )
    needs = "--data-root DIR (the paths are relative to it), --train-list F, --test-list F"

    def __init__(
        self,
        root: Path | None,
        train_list: str | None = None,
        test_list: str | None = None,
        val_list: str | None = None,
    ) -> None:
        super().__init__(root)
        if root is None or not root.is_dir():
            where = "" if root is None else f" ('{root}' is not a folder)"
            raise UserError(
                f"dataset 'filelist' needs --data-root DIR{where}: the folder the "
                "listed paths are relative to"
            )
        if not train_list or not test_list:
            raise UserError(
                "dataset 'filelist' needs --train-list F and --test-list F (lines of "
                "'relative/path label'; optional --val-list F)"
            )
        given = {"train": train_list, "test": test_list, "val": val_list}
        self.lists = {k: Path(v).expanduser() for k, v in given.items() if v}
        self.display_name = f"filelist ({Path(train_list).stem})"

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.lists)

    @cached_property
    def _read(self) -> dict[str, tuple[list[str], np.ndarray]]:
        return {split: read_list(path) for split, path in self.lists.items()}

    @cached_property
    def classes(self) -> list[str]:  # type: ignore[override]
        """Labels 0..C-1 of the train list, named by their numbers."""
        n = int(self._read["train"][1].max()) + 1
        for split, (_, labels) in self._read.items():
            if labels.max() >= n:
                raise UserError(
                    f"the {split} list '{self.lists[split]}' has label {labels.max()}, but the "
                    f"train list's labels end at {n - 1}; the lists must share their classes"
                )
        return [str(c) for c in range(n)]

    def _list(self, split: str) -> tuple[list[str], np.ndarray]:
        self.classes  # noqa: B018 (checks the labels of every list)
        return self._read[split]

    @cached_property
    def _fingerprint(self) -> str:
        """The images' fingerprint and the lists' bytes (the labels live there)."""
        h = hashlib.sha256(tree_fingerprint(self.root, self._paths()).encode())
        for split, path in sorted(self.lists.items()):
            h.update(f"{split}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
        return h.hexdigest()[:12]
