"""What every supervised (Table 2) loader returns, and how its splits are cut.

``trainval`` is all training data (what the authors trained on), ``val`` a fixed stratified subset of it
(seeded, so every run and every method holds out the same images), ``train`` the rest, ``test`` the
official test data."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from .registry import DatasetInfo

VAL_SEED = 0


def holdout_indices(labels: Sequence[int] | np.ndarray, size: int, seed: int = VAL_SEED) -> np.ndarray:
    """``size`` indices drawn per class in proportion to the class frequencies (largest remainders get
    the leftovers), sorted. The same labels, size and seed always give the same indices."""
    labels = np.asarray(labels)
    if not 0 < size < len(labels):
        raise ValueError(f"validation size {size} must be between 1 and {len(labels) - 1}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    take = np.floor(exact).astype(int)
    leftover = size - take.sum()
    take[np.argsort(-(exact - take), kind="stable")[:leftover]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def check_input_shape(name: str, shape: tuple[int, int, int], input_shape: tuple[int, ...] | None) -> None:
    if input_shape not in (None, shape):
        raise ValueError(f"{name} images are {shape}; input_shape={input_shape} is not supported")


def split_indices(split: str, labels: Sequence[int] | np.ndarray, val_size: int) -> np.ndarray:
    """Indices into the training data for ``trainval`` / ``val`` / ``train``."""
    n = len(labels)
    if split == "trainval":
        return np.arange(n)
    val = holdout_indices(labels, val_size)
    if split == "val":
        return val
    if split == "train":
        return np.setdiff1d(np.arange(n), val, assume_unique=True)
    raise ValueError(f"split {split!r} is not cut from the training data")


class SupervisedDataset(Dataset):
    """``source[indices[i]]`` (an ``(image, label)`` pair; the image a PIL image) through ``transform``.

    Attributes: ``info`` (DatasetInfo), ``input_shape`` (C, H, W), ``split``, ``targets`` (int64 labels
    of this split, in order), ``num_classes``, ``stats`` (the DoReFa mean/std, also when unused)."""

    def __init__(self, source: Any, indices: np.ndarray, targets: np.ndarray, transform: Callable,
                 info: DatasetInfo, split: str, input_shape: tuple[int, int, int],
                 stats: tuple[Sequence[float], Sequence[float]] | None = None):
        self.source, self.indices, self.transform = source, np.asarray(indices, dtype=np.int64), transform
        self.targets = np.asarray(targets, dtype=np.int64)
        if len(self.targets) != len(self.indices):
            raise ValueError("targets and indices differ in length")
        self.info, self.split, self.input_shape, self.stats = info, split, tuple(input_shape), stats
        self.num_classes = info.num_classes

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.source[int(self.indices[i])]
        return self.transform(image), int(label)

    def __repr__(self) -> str:
        return (f"SupervisedDataset({self.info.title}, split={self.split!r}, n={len(self)}, "
                f"input_shape={self.input_shape})")
