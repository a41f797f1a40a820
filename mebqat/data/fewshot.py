"""What every few-shot loader returns: one split's images in memory, with the bookkeeping that
the episode samplers need, and the step from sampled indices to an :class:`Episode` (or a stacked batch)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.registry import DatasetInfo
from .episode import Episode
from .storage import digest


class FewShotSplit(Dataset):
    """One split of a few-shot dataset: ``images`` uint8 ``[M, C, H, W]`` and ``targets`` int64 ``[M]`` with
    classes ``0 … num_classes−1``. Items are ``(float32 [C, H, W] in [0, 1], int)``.

    ``class_names[c]`` says what class ``c`` is (e.g. ``"Greek/character03@90"``); ``seed`` is the stand-in
    build it came from (``None`` for real data); ``sources`` the files (or folders) it was read from, what a
    job's data fingerprint hashes."""

    def __init__(
        self,
        images: torch.Tensor,
        targets: np.ndarray | Sequence[int],
        info: DatasetInfo,
        split: str,
        root: Path,
        class_names: Sequence[str] | None = None,
        seed: int | None = None,
        sources: Sequence[Path] = (),
    ):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 [M, C, H, W], got {images.dtype} {tuple(images.shape)}")
        targets = np.asarray(targets, dtype=np.int64)
        if len(targets) != len(images):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        classes = np.unique(targets)
        if len(classes) == 0 or not np.array_equal(classes, np.arange(len(classes))):
            raise ValueError("targets must cover the classes 0 … num_classes−1 without gaps")
        self.images, self.targets = images, targets
        self._pixels = images.numpy()  # same memory; numpy serves the many small reads (see load)
        self.info, self.split, self.root, self.seed = info, split, Path(root), seed
        self.sources = tuple(sources)
        self.num_classes = len(classes)
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in classes]
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        self.input_shape = tuple(images.shape[1:])
        order = np.argsort(targets, kind="stable")
        bounds = np.searchsorted(targets[order], np.arange(self.num_classes + 1))
        self.labels_to_indices: dict[int, list[int]] = {
            c: order[bounds[c] : bounds[c + 1]].tolist() for c in range(self.num_classes)
        }

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.load([i])[0], int(self.targets[i])

    @property
    def min_samples_per_class(self) -> int:
        return min(len(v) for v in self.labels_to_indices.values())

    @cached_property
    def identity(self) -> dict[str, Any]:
        """What a stored task set is bound to: this exact split (same labels in the same order)."""
        return {
            "dataset": self.info.name,
            "split": self.split,
            "seed": self.seed,
            "samples": len(self),
            "classes": self.num_classes,
            "shape": list(self.input_shape),
            "targets": digest(self.targets),
        }

    def load(self, indices: np.ndarray | Sequence[int]) -> torch.Tensor:
        """Images at ``indices`` as float32 in [0, 1] (``x / 255``, correctly rounded).

        numpy, not torch: an episode is a few small copies, for which torch's thread pool costs more than
        it saves, and waits a scheduler tick per operation on a busy machine."""
        picked = self._pixels[np.asarray(indices, dtype=np.int64)]
        return torch.from_numpy(np.divide(picked, np.float32(255.0), dtype=np.float32))

    def resized(self, size: int | None) -> FewShotSplit:
        """The same split with its images reduced to ``size``×``size`` (antialiased bilinear, rounded back to
        uint8), once at load time; ``None`` or the current size returns this split. Not
        :func:`~mebqat.data.transforms.resize_images`: that one goes through torchvision, whose import a
        few-shot job otherwise never pays."""
        if size is None or self.images.shape[-2:] == (size, size):
            return self
        if size > min(self.images.shape[-2:]):
            raise ValueError(
                f"image_size {size} is larger than the {self.info.name} images "
                f"({self.images.shape[-1]}×{self.images.shape[-2]}): it only reduces"
            )
        smaller = torch.nn.functional.interpolate(
            self.images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        reduced = copy.copy(self)
        reduced.identity = self.identity  # the same images, so stored task sets (indices) still apply
        reduced.images = smaller.round_().clamp_(0, 255).to(torch.uint8)
        reduced._pixels = reduced.images.numpy()
        reduced.input_shape = tuple(reduced.images.shape[1:])
        return reduced

    def to(self, device: torch.device | str) -> FewShotSplit:
        """The same split with its images on ``device`` (episodes are then gathered there)."""
        moved = copy.copy(self)
        moved.images = self.images.to(device)
        return moved

    def episodes(self, plans: Sequence[Any], shots: int) -> Episode:
        """A stacked batch of episodes from task plans (``indices [N, K+Q]``, ``labels [N]``), gathered in one
        indexing step on the images' device."""
        indices = np.stack([np.asarray(p.indices) for p in plans])  # [B, N, K+Q]
        batch, ways, per_class = indices.shape
        queries = per_class - shots
        device = self.images.device
        if device.type == "cpu":
            picked = torch.from_numpy(np.divide(self._pixels[indices], np.float32(255.0), dtype=np.float32))
        else:
            picked = self.images[torch.as_tensor(indices, device=device)].float().div_(255)
        labels = torch.as_tensor(np.stack([np.asarray(p.labels, dtype=np.int64) for p in plans]), device=device)
        shape = self.images.shape[1:]
        return Episode(
            picked[:, :, :shots].reshape(batch, ways * shots, *shape),
            labels.repeat_interleave(shots, dim=1),
            picked[:, :, shots:].reshape(batch, ways * queries, *shape),
            labels.repeat_interleave(queries, dim=1),
        )

    def episode(self, indices: np.ndarray, labels: np.ndarray, shots: int) -> Episode:
        """Indices ``[N, K+Q]`` (row i: the i-th class of the episode, support first) and one label per row
        -> an :class:`Episode` grouped by class in row order."""
        indices = np.asarray(indices)
        ways, per_class = indices.shape
        queries = per_class - shots
        classes = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        return Episode(
            self.load(indices[:, :shots].reshape(-1)),
            classes.repeat_interleave(shots),
            self.load(indices[:, shots:].reshape(-1)),
            classes.repeat_interleave(queries),
        )

    def __repr__(self) -> str:
        return (
            f"FewShotSplit({self.info.title}, split={self.split!r}, classes={self.num_classes}, "
            f"images={len(self)}, input_shape={self.input_shape})"
        )
