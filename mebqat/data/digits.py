"""``digits``: the offline stand-in for CIFAR-10 and SVHN (Table 2).

scikit-learn's 1,797 real 8×8 handwritten digits (``sklearn.datasets.load_digits``, shipped inside
scikit-learn; ink levels 0–16), rescaled to 0–255, resized bilinearly to the requested input shape
(grey replicated to 3 channels) and cached in ``<root>/standins/``. The split is fixed: ``test`` = 360
images (20 %, stratified, seed 0), ``val`` = 144 of the remaining 1,437 (10 %, stratified, seed 0),
``train`` = the other 1,293. Augmentation mirrors the role: at 32×32 (CIFAR-10's place) random crop with
padding 4 and horizontal flip; at other sizes (40×40 is SVHN's place) none. DoReFa normalisation uses the
mean/std of its own ``trainval`` images.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..core.registry import DATASETS
from .storage import cached_arrays
from .supervised import SupervisedDataset, holdout_indices, split_indices
from .transforms import InputPipeline, channel_stats

VERSION = 1
TEST_SIZE = 360
VAL_SIZE = 144
DEFAULT_SHAPE = (3, 32, 32)
ROLE_SHAPES = ((3, 32, 32), (3, 40, 40))  # CIFAR-10's and SVHN's inputs

INFO = DATASETS.get("digits")


def cache_path(root: Path, shape: tuple[int, int, int]) -> Path:
    return root / "standins" / f"digits-{'x'.join(map(str, shape))}-v{VERSION}.npz"


def _check_shape(shape: tuple[int, int, int]) -> None:
    c, h, w = shape
    if c not in (1, 3) or not (8 <= h <= 512 and 8 <= w <= 512):
        raise ValueError(f"digits input_shape must be (1 or 3, H, W) with 8 <= H, W <= 512; got {shape}")


def build_arrays(shape: tuple[int, int, int]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from sklearn.datasets import load_digits

    c, h, w = shape
    digits = load_digits()
    labels = digits.target.astype(np.int64)
    small = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    resized = np.stack([np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BILINEAR)) for img in small])
    images = np.repeat(resized[:, None], c, axis=1)
    test = holdout_indices(labels, TEST_SIZE)
    trainval = np.setdiff1d(np.arange(len(labels)), test, assume_unique=True)
    mean, std = channel_stats(images[trainval])
    meta = {"dataset": "digits", "version": VERSION, "shape": list(shape), "mean": mean, "std": std}
    return meta, {"images": images, "labels": labels, "test": test, "trainval": trainval}


def _check(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str | None:
    if (
        meta.get("dataset") != "digits"
        or meta.get("version") != VERSION
        or not {"images", "labels", "test", "trainval"} <= set(arrays)
    ):
        return "is not a digits cache of this version"
    return None


def load_cache(root: Path, shape: tuple[int, int, int]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    meta, arrays, _ = cached_arrays(cache_path(root, shape), lambda: build_arrays(shape), _check)
    return meta, arrays


def build(root: Path, seed: int) -> dict[str, Any]:
    if seed != 0:
        raise ValueError("digits has no seed: its images are scikit-learn's and its split is fixed")
    paths = [cache_path(root, shape) for shape in ROLE_SHAPES]
    cached = all(p.is_file() for p in paths)
    started = time.perf_counter()
    for shape in ROLE_SHAPES:
        load_cache(root, shape)
    return {
        "name": "digits",
        "title": INFO.title,
        "paths": [str(p) for p in paths],
        "bytes": sum(p.stat().st_size for p in paths),
        "seconds": None if cached else time.perf_counter() - started,
        "splits": {"train": 1797 - TEST_SIZE - VAL_SIZE, "val": VAL_SIZE, "test": TEST_SIZE},
        "classes": 10,
        "shapes": [list(s) for s in ROLE_SHAPES],
    }


def load(
    split: str, root: Path, *, normalization: str, augment: bool, input_shape, download: bool, verify: bool
) -> SupervisedDataset:
    shape = tuple(input_shape or DEFAULT_SHAPE)
    _check_shape(shape)
    meta, arrays = load_cache(root, shape)
    labels = arrays["labels"]
    if split == "test":
        indices = arrays["test"]
    else:
        trainval = arrays["trainval"]
        indices = trainval[split_indices(split, labels[trainval], VAL_SIZE)]
    stats = (tuple(meta["mean"]), tuple(meta["std"]))
    cifar_role = shape[1:] == (32, 32)
    pipeline = InputPipeline(normalization, stats, crop_padding=shape[1] // 8 if cifar_role else None, flip=cifar_role)
    return SupervisedDataset(
        arrays["images"][indices],
        indices,
        labels[indices],
        pipeline,
        INFO,
        split,
        shape,
        augment,
        stats,
        sources=[cache_path(root, shape)],
    )
