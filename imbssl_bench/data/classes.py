"""A dataset restricted to some of its classes (``--classes 0-4``), relabelled 0..k-1 in the
order given: e.g. CIFAR-10's first five classes for pre-training, the other five out of domain."""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np
import torch

from imbssl_bench.data.base import DatasetSource, ImageData
from imbssl_bench.data.splits import Split
from imbssl_bench.errors import UserError


def parse_classes(text: str, names: list[str]) -> list[int]:
    """Class indices from ``0-4``, ``0,2,5-7`` or class names (``cat,dog``), in that order.
    Numbers are always positions in the class list (a record's ``class_names``), even where
    the class folders are named by numbers.

    Examples:
        >>> parse_classes("0-2,cat", ["a", "b", "c", "cat"])
        [0, 1, 2, 3]
    """
    picked: list[int] = []
    for token in (t.strip() for t in text.split(",")):
        low, dash, high = token.partition("-")
        if low.isdigit() and (not dash or high.isdigit()):
            picked += range(int(low), int(high if dash else low) + 1)
        elif token in names:
            picked.append(names.index(token))
        else:
            picked = [-1]
            break
    bad = [c for c in picked if not 0 <= c < len(names)]
    if not picked or bad or len(set(picked)) != len(picked):
        raise UserError(
            f"bad --classes '{text}': give class numbers 0..{len(names) - 1}, ranges like 0-4 "
            f"or class names, each once (e.g. 0-4 or {names[0]},{names[-1]})"
        )
    return picked


class ClassSubset(DatasetSource):
    """`inner` with only the classes of `spec`: a view, so planning and execution draw from
    the same relabelled train pool."""

    def __init__(self, inner: DatasetSource, spec: str) -> None:
        super().__init__(inner.root)
        self.inner, self.spec = inner, spec
        self.keep = parse_classes(spec, inner.classes)
        self.name = inner.name
        self.display_name = f"{inner.display_name or inner.name}, classes {spec}"
        self._label = np.full(len(inner.classes), -1, dtype=np.int64)
        self._label[self.keep] = np.arange(len(self.keep))
        self._loaded: dict[str, ImageData] = {}

    @property
    def classes(self) -> list[str]:
        return [self.inner.classes[c] for c in self.keep]

    @cached_property
    def _train_targets(self) -> np.ndarray:
        labels = self._label[self.inner.train_targets()]
        return labels[labels >= 0]

    def train_targets(self) -> np.ndarray:
        return self._train_targets

    @property
    def image_size(self) -> int:
        return self.inner.image_size

    @property
    def has_val(self) -> bool:
        return self.inner.has_val

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def choose_storage(self, streaming: bool | None) -> str:
        return self.inner.choose_storage(streaming)

    def _select(self, split: Split) -> Split:
        labels = self._label[split.targets.numpy()]
        kept = np.flatnonzero(labels >= 0)
        return dataclasses.replace(split.subset(kept), targets=torch.from_numpy(labels[kept]))

    def load(self, storage: str = "memory") -> ImageData:
        if storage not in self._loaded:
            data = self.inner.load(storage)
            val = None if data.val is None else self._select(data.val)
            self._loaded[storage] = ImageData(
                self.classes, self._select(data.train), self._select(data.test), val
            )
        return self._loaded[storage]

    def _load(self) -> ImageData:
        return self.load("memory")
