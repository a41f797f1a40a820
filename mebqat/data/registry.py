"""Loading registered datasets. A dataset is one module with its loader (and, for a stand-in, a cache
builder) plus one entry in :mod:`mebqat.core.catalog` holding its metadata
(:class:`~mebqat.core.registry.DatasetInfo`).

Supervised loaders are called as ``loader(split, root, *, normalization, augment, input_shape, download,
verify)`` and few-shot loaders as ``loader(split, root, *, download, verify, seed)``; ``root`` is already
resolved. Stand-ins also have ``build(root, seed)`` that creates their cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ..core.registry import DATASETS, load_object
from .storage import resolve_root

Kind = Literal["supervised", "fewshot"]
SUPERVISED_SPLITS = ("train", "val", "trainval", "test")
FEWSHOT_SPLITS = ("train", "val", "test")
NORMALIZATIONS = ("dorefa", "sat", "none")


def available_datasets(kind: Kind | None = None) -> list[str]:
    if kind not in (None, "supervised", "fewshot"):
        raise ValueError(f"unknown dataset kind {kind!r}; expected 'supervised' or 'fewshot'")
    return DATASETS.names(lambda info: kind is None or info.kind == kind)


def _loader_of_kind(name: str, kind: Kind) -> Any:
    info = DATASETS.get(name)
    if info.kind != kind:
        other = "load_fewshot" if info.kind == "fewshot" else "load_supervised"
        raise ValueError(f"dataset {name!r} is a {info.kind} dataset; use {other}()")
    return DATASETS.load(name)


def _check_choice(what: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(map(repr, choices))}")


def load_supervised(
    name: str,
    split: str,
    root: str | Path | None = None,
    *,
    normalization: str = "dorefa",
    augment: bool | None = None,
    input_shape: tuple[int, int, int] | None = None,
    download: bool = False,
    verify: bool = True,
):
    """A supervised (Table 2) dataset split as a torch Dataset of ``(float32 [C,H,W], int)``.

    ``split``: ``trainval`` (all training data), ``val`` (a fixed held-out part of it), ``train``
    (``trainval`` minus ``val``) or ``test``. ``augment=None``: the paper's training augmentation on
    train/trainval, none on val/test. ``verify=False`` skips the official checksums (files you built or
    re-packed yourself); the files are parsed by the same standard loader either way.
    """
    loader = _loader_of_kind(name, "supervised")
    _check_choice("split", split, SUPERVISED_SPLITS)
    _check_choice("normalization", normalization, NORMALIZATIONS)
    if augment is None:
        augment = split in ("train", "trainval")
    if input_shape is not None:
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {shape}")
        input_shape = (shape[0], shape[1], shape[2])
    return loader(
        split,
        resolve_root(root),
        normalization=normalization,
        augment=bool(augment),
        input_shape=input_shape,
        download=download,
        verify=verify,
    )


def load_fewshot(
    name: str, split: str, root: str | Path | None = None, download: bool = False, *, verify: bool = True, seed: int = 0
):
    """A few-shot (Tables 4/5) split as a :class:`~mebqat.data.fewshot.FewShotSplit`.

    ``seed`` selects the build of a stand-in (real datasets ignore it); ``verify`` as in
    :func:`load_supervised`."""
    loader = _loader_of_kind(name, "fewshot")
    _check_choice("split", split, FEWSHOT_SPLITS)
    return loader(split, resolve_root(root), download=download, verify=verify, seed=int(seed))


def build_standin(name: str, root: str | Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Build (or reuse) a stand-in's cache; returns a summary (path, bytes, classes, build seconds...)."""
    info = DATASETS.get(name)
    if info.build is None:
        raise ValueError(f"dataset {name!r} is not a stand-in; nothing to build (it is loaded from its files)")
    return load_object(info.build)(resolve_root(root), int(seed))
