"""MiniImageNet (Tables 4/5) through ``learn2learn.vision.datasets.MiniImagenet``: the Ravi–Larochelle
split, 64 / 16 / 20 classes of 600 colour images, 84×84, no normalisation or augmentation.

Files under the data root: ``mini-imagenet/mini-imagenet-cache-{train,validation,test}.pkl`` (pickled
dicts with ``image_data``, uint8 ``[N, 84, 84, 3]``, and ``class_dict``, class name -> image indices).
Pixels are kept as uint8 after loading (learn2learn holds them as float32, 4× the memory).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..core.registry import DATASETS
from .fewshot import FewShotSplit
from .l2l import learn2learn
from .storage import DatasetCorruptError, ensure_files, quiet_stdout
from .synthetic import refuse_synthetic, refuse_synthetic_content

FOLDER = "mini-imagenet"
MODES = {"train": "train", "val": "validation", "test": "test"}
CLASSES = {"train": 64, "val": 16, "test": 20}
PER_CLASS = 600
SHAPE = (3, 84, 84)
INFO = DATASETS.get("miniimagenet")
HOW_TO_OBTAIN = INFO.how_to_obtain


def load(split: str, root: Path, *, download: bool, verify: bool, seed: int) -> FewShotSplit:
    mode = MODES[split]
    folder = root / FOLDER
    path = folder / f"mini-imagenet-cache-{mode}.pkl"

    def fetch(staging: Path) -> None:
        with quiet_stdout():
            learn2learn().vision.datasets.MiniImagenet(str(staging / FOLDER), mode=mode, download=True)

    ensure_files("miniimagenet", root, [path], HOW_TO_OBTAIN, fetch if download else None)
    if verify:  # before the counts check below, which a full-size synthetic set would pass
        refuse_synthetic("miniimagenet", [folder], HOW_TO_OBTAIN)
    MiniImagenet = learn2learn().vision.datasets.MiniImagenet  # imported only now: it costs seconds
    try:
        dataset = MiniImagenet(str(folder), mode=mode, download=False)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise DatasetCorruptError(
            "miniimagenet", path, HOW_TO_OBTAIN, f"not a MiniImageNet cache pickle ({type(err).__name__}: {err})"
        ) from None
    if verify:  # the pickle copied out of its folder, without the marker file
        refuse_synthetic_content("miniimagenet", path, dataset.data, HOW_TO_OBTAIN)
    if tuple(dataset.x.shape[1:]) != SHAPE:
        raise DatasetCorruptError(
            "miniimagenet", path, HOW_TO_OBTAIN, f"images are {tuple(dataset.x.shape[1:])}, expected {SHAPE}"
        )
    images = dataset.x.to(torch.uint8)  # the pickle's uint8 values, exactly
    targets = np.asarray(dataset.y, dtype=np.int64)
    names = list(dataset.class_idx)
    del dataset
    counts = np.bincount(targets, minlength=len(names))
    if verify and (len(names) != CLASSES[split] or not (counts == PER_CLASS).all()):
        raise DatasetCorruptError(
            "miniimagenet",
            path,
            HOW_TO_OBTAIN,
            f"{len(names)} classes with {counts.min()}-{counts.max()} images each, expected "
            f"{CLASSES[split]} x {PER_CLASS}; a subset you built yourself loads with verify=False",
        )
    return FewShotSplit(images, targets, INFO, split, root, names, sources=[path])
