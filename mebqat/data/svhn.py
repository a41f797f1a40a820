"""SVHN (Table 2) through ``torchvision.datasets.SVHN``: ``train`` (73,257) + ``extra`` (531,131) for
training, ``test`` (26,032) for testing, resized to 40×40, no augmentation (official-mebqat.md §6)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch

from ..core.registry import DATASETS
from .storage import ensure_files, open_checked
from .supervised import SupervisedDataset, check_input_shape, split_indices
from .synthetic import refuse_synthetic
from .transforms import DOREFA_STATS, InputPipeline, resize_images

FOLDER = "svhn"
URL = "http://ufldl.stanford.edu/housenumbers/"
PARTS = {"train": "train_32x32.mat", "extra": "extra_32x32.mat", "test": "test_32x32.mat"}
VAL_SIZE = 6_000  # the size Goodfellow et al. (2013) held out; stratified over train + extra
SIZE = 40
SHAPE = (3, SIZE, SIZE)
INFO = DATASETS.get("svhn")
HOW_TO_OBTAIN = INFO.how_to_obtain


@cache
def _loader_class(verify: bool):
    """torchvision's SVHN, or (``verify=False``) the same class with its MD5 entries blanked."""
    from torchvision.datasets import SVHN

    if verify:
        return SVHN

    class UncheckedSVHN(SVHN):
        split_list = {part: [url, filename, None] for part, (url, filename, _) in SVHN.split_list.items()}

    return UncheckedSVHN


def open_svhn(root: Path, part: str, download: bool, verify: bool):
    folder = root / FOLDER
    path = folder / PARTS[part]

    def fetch(staging: Path) -> None:
        from torchvision.datasets import SVHN

        SVHN(str(staging / FOLDER), split=part, download=True)

    ensure_files("svhn", root, [path], HOW_TO_OBTAIN, fetch if download else None)
    if verify:
        refuse_synthetic("svhn", [folder, path], HOW_TO_OBTAIN)
    return open_checked(
        "svhn", path, HOW_TO_OBTAIN, lambda: _loader_class(verify)(str(folder), split=part, download=False)
    )


def load(
    split: str, root: Path, *, normalization: str, augment: bool, input_shape, download: bool, verify: bool
) -> SupervisedDataset:
    # `augment` has nothing to switch on: the paper trains SVHN without augmentation.
    check_input_shape("svhn", SHAPE, input_shape)
    names = ("test",) if split == "test" else ("train", "extra")
    parts = [open_svhn(root, part, download, verify) for part in names]
    targets = np.concatenate([np.asarray(p.labels, dtype=np.int64) for p in parts])
    indices = np.arange(len(targets)) if split == "test" else split_indices(split, targets, VAL_SIZE)
    images = _gather_resized([np.asarray(p.data) for p in parts], indices)
    del parts
    return SupervisedDataset(
        images,
        indices,
        targets[indices],
        pipeline(normalization),
        INFO,
        split,
        SHAPE,
        augment,
        DOREFA_STATS["svhn"],
        sources=[root / FOLDER / PARTS[part] for part in names],
    )


def _gather_resized(sources: list[np.ndarray], indices: np.ndarray, chunk: int = 8192) -> torch.Tensor:
    """The images at ``indices`` of the parts laid end to end (uint8 ``[n_i, 3, 32, 32]`` each), resized to
    40×40, chunk by chunk into one preallocated tensor: train + extra is 604,388 images, and concatenating,
    indexing and resizing them whole peaked at ~10 GB (the paper-scale rehearsal measured it)."""
    offsets = np.cumsum([0] + [len(s) for s in sources])
    images = torch.empty((len(indices), *SHAPE), dtype=torch.uint8)
    for start in range(0, len(indices), chunk):
        picked = indices[start : start + chunk]
        part_of = np.searchsorted(offsets, picked, side="right") - 1
        block = np.empty((len(picked), *sources[0].shape[1:]), dtype=np.uint8)
        for k, source in enumerate(sources):
            mine = part_of == k
            if mine.any():
                block[mine] = source[picked[mine] - offsets[k]]
        images[start : start + len(picked)] = resize_images(torch.from_numpy(block), SIZE, chunk)
    return images


def pipeline(normalization: str) -> InputPipeline:
    """SVHN's input pipeline: no augmentation (the paper trains SVHN without it)."""
    return InputPipeline(normalization, DOREFA_STATS["svhn"])
