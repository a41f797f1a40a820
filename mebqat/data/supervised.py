"""What every supervised (Table 2) loader returns, and how its splits are cut.

``trainval`` is all training data (what the authors trained on), ``val`` a fixed stratified subset of it
(seeded, so every run and every method holds out the same images), ``train`` the rest, ``test`` the
official test data."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.registry import DatasetInfo
from .transforms import InputPipeline

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
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
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
    """One split held as uint8 images ``[N, C, H, W]`` at the network's input size (a tensor, movable to
    the GPU with :meth:`to`) and int64 labels, plus its :class:`~mebqat.data.transforms.InputPipeline`.
    :meth:`batch` turns a batch of positions into network input in one vectorised step (augmentation
    included when the split augments); ``data[i]`` gives one ``(float32 [C,H,W], int)`` pair.

    Attributes: ``info`` (DatasetInfo), ``input_shape`` (C, H, W), ``split``, ``indices`` (positions in
    the dataset's training or test data), ``targets`` (int64 labels of this split, in order),
    ``num_classes``, ``stats`` (the DoReFa mean/std, also when unused), ``augment``, ``sources`` (the files the
    split was read from: what a job's data fingerprint hashes)."""

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        indices: np.ndarray,
        targets: np.ndarray,
        pipeline: InputPipeline,
        info: DatasetInfo,
        split: str,
        input_shape: tuple[int, int, int],
        augment: bool,
        stats: tuple[Sequence[float], Sequence[float]] | None = None,
        sources: Sequence[Path] = (),
    ):
        self.images = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
        self.indices = np.asarray(indices, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.int64)
        if not (len(self.targets) == len(self.indices) == len(self.images)):
            raise ValueError("images, targets and indices differ in length")
        if self.images.dtype != torch.uint8 or tuple(self.images.shape[1:]) != tuple(input_shape):
            raise ValueError(
                f"images must be uint8 [N, {', '.join(map(str, input_shape))}], got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        self.labels = torch.from_numpy(self.targets).to(self.images.device)
        self.pipeline, self.augment = pipeline, augment and pipeline.augments
        self.info, self.split, self.input_shape, self.stats = info, split, tuple(input_shape), stats
        self.num_classes = info.num_classes
        self.sources = tuple(sources)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x = self.pipeline(self.images[i : i + 1], augment=self.augment)[0]
        return x, int(self.targets[i])

    def batch(
        self, positions: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(network input, labels) of the images at ``positions`` (a long tensor on the images' device)."""
        return self.pipeline(self.images[positions], augment=self.augment, generator=generator), self.labels[positions]

    def to(self, device: torch.device | str) -> SupervisedDataset:
        """The same split with its images and labels on ``device``."""
        moved = copy.copy(self)
        moved.images, moved.labels = self.images.to(device), self.labels.to(device)
        return moved

    def __repr__(self) -> str:
        return (
            f"SupervisedDataset({self.info.title}, split={self.split!r}, n={len(self)}, "
            f"input_shape={self.input_shape}, augment={self.augment})"
        )
