"""CIFAR-10 (Table 2) through ``torchvision.datasets.CIFAR10``: 50,000 training and 10,000 test images,
32×32. Training augmentation: random crop with padding 4 and horizontal flip."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from ..core.registry import DATASETS
from .storage import ensure_files, open_checked
from .supervised import SupervisedDataset, check_input_shape, split_indices
from .synthetic import refuse_synthetic
from .transforms import DOREFA_STATS, InputPipeline

FOLDER = "cifar-10-batches-py"
FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
VAL_SIZE = 5_000  # 500 per class, held out of the 50,000 training images
SHAPE = (3, 32, 32)
INFO = DATASETS.get("cifar10")
HOW_TO_OBTAIN = INFO.how_to_obtain


@cache
def _loader_class(verify: bool):
    """torchvision's CIFAR10, or (``verify=False``) the same class with its MD5 table blanked, which makes
    its integrity check a plain existence check and leaves its parsing untouched."""
    from torchvision.datasets import CIFAR10

    if verify:
        return CIFAR10

    class UncheckedCIFAR10(CIFAR10):
        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return UncheckedCIFAR10


def open_cifar10(root: Path, train: bool, download: bool, verify: bool):
    """The torchvision dataset (no transform), downloading first when allowed."""
    folder = root / FOLDER

    def fetch(staging: Path) -> None:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(staging), train=True, download=True)

    ensure_files("cifar10", root, [folder / name for name in FILES], HOW_TO_OBTAIN, fetch if download else None)
    if verify:
        refuse_synthetic("cifar10", [folder, folder / "batches.meta"], HOW_TO_OBTAIN)
    return open_checked(
        "cifar10", folder, HOW_TO_OBTAIN, lambda: _loader_class(verify)(str(root), train=train, download=False)
    )


def load(
    split: str, root: Path, *, normalization: str, augment: bool, input_shape, download: bool, verify: bool
) -> SupervisedDataset:
    check_input_shape("cifar10", SHAPE, input_shape)
    base = open_cifar10(root, train=split != "test", download=download, verify=verify)
    targets = np.asarray(base.targets, dtype=np.int64)
    indices = np.arange(len(targets)) if split == "test" else split_indices(split, targets, VAL_SIZE)
    images = np.ascontiguousarray(np.asarray(base.data)[indices].transpose(0, 3, 1, 2))  # HWC → CHW, uint8
    return SupervisedDataset(
        images,
        indices,
        targets[indices],
        pipeline(normalization),
        INFO,
        split,
        SHAPE,
        augment,
        DOREFA_STATS["cifar10"],
        sources=source_files(root, split),
    )


def source_files(root: Path, split: str) -> list[Path]:
    """The files torchvision's CIFAR10 reads for ``split``: the training batches (or the test batch) and the
    class names."""
    names = [name for name in FILES if name.startswith("data_batch")] if split != "test" else ["test_batch"]
    return [root / FOLDER / name for name in (*names, "batches.meta")]


def pipeline(normalization: str) -> InputPipeline:
    """CIFAR-10's input pipeline: random 32x32 crop of the 4-pixel zero-padded image and a horizontal flip."""
    return InputPipeline(normalization, DOREFA_STATS["cifar10"], crop_padding=4, flip=True)
