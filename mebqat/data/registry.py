"""The dataset registry. A dataset is one module that defines its loader and decorates it with
:func:`register_dataset`, plus one import line in ``mebqat/data/__init__.py``.

Supervised loaders are called as ``loader(split, root, *, normalization, augment, input_shape, download,
verify)`` and few-shot loaders as ``loader(split, root, *, download, verify, seed)``; ``root`` is already
resolved. Stand-ins also register a ``build(root, seed)`` that creates their cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from .storage import resolve_root

Kind = Literal["supervised", "fewshot"]
SUPERVISED_SPLITS = ("train", "val", "trainval", "test")
FEWSHOT_SPLITS = ("train", "val", "test")
NORMALIZATIONS = ("dorefa", "sat", "none")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: Kind
    input_shape: tuple[int, int, int]
    """(C, H, W) of the samples as loaded (for ``digits``: the default; it takes others)."""
    num_classes: int
    """Supervised: the number of labels. Few-shot: classes over all splits (see ``split_classes``)."""
    is_standin: bool
    stands_for: str | None
    description: str
    how_to_obtain: str
    split_classes: Mapping[str, int] = field(default_factory=dict)
    """Few-shot: classes per split."""

    @property
    def title(self) -> str:
        """The name as every output shows it: stand-ins say so."""
        return f"{self.name} (stand-in for {self.stands_for})" if self.is_standin else self.name


@dataclass(frozen=True)
class DatasetEntry:
    info: DatasetInfo
    loader: Callable[..., Any]
    build: Callable[[Path, int], dict[str, Any]] | None = None
    """Stand-ins: build (or reuse) the cache for a seed and return a summary."""


_DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(info: DatasetInfo, build: Callable[[Path, int], dict[str, Any]] | None = None):
    def decorate(loader: Callable[..., Any]) -> Callable[..., Any]:
        if info.name in _DATASETS:
            raise ValueError(f"dataset {info.name!r} is registered twice")
        _DATASETS[info.name] = DatasetEntry(info, loader, build)
        return loader
    return decorate


def get_dataset_entry(name: str) -> DatasetEntry:
    try:
        return _DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(_DATASETS))}") from None


def dataset_info(name: str) -> DatasetInfo:
    return get_dataset_entry(name).info


def available_datasets(kind: Kind | None = None) -> list[str]:
    if kind not in (None, "supervised", "fewshot"):
        raise ValueError(f"unknown dataset kind {kind!r}; expected 'supervised' or 'fewshot'")
    return sorted(n for n, e in _DATASETS.items() if kind is None or e.info.kind == kind)


def _entry_of_kind(name: str, kind: Kind) -> DatasetEntry:
    entry = get_dataset_entry(name)
    if entry.info.kind != kind:
        other = "load_fewshot" if entry.info.kind == "fewshot" else "load_supervised"
        raise ValueError(f"dataset {name!r} is a {entry.info.kind} dataset; use {other}()")
    return entry


def _check_choice(what: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(map(repr, choices))}")


def load_supervised(name: str, split: str, root: str | Path | None = None, *, normalization: str = "dorefa",
                    augment: bool | None = None, input_shape: tuple[int, int, int] | None = None,
                    download: bool = False, verify: bool = True):
    """A supervised (Table 2) dataset split as a torch Dataset of ``(float32 [C,H,W], int)``.

    ``split``: ``trainval`` (all training data), ``val`` (a fixed held-out part of it), ``train``
    (``trainval`` minus ``val``) or ``test``. ``augment=None``: the paper's training augmentation on
    train/trainval, none on val/test. ``verify=False`` skips the official checksums (files you built or
    re-packed yourself); the files are parsed by the same standard loader either way.
    """
    entry = _entry_of_kind(name, "supervised")
    _check_choice("split", split, SUPERVISED_SPLITS)
    _check_choice("normalization", normalization, NORMALIZATIONS)
    if augment is None:
        augment = split in ("train", "trainval")
    if input_shape is not None:
        input_shape = tuple(int(v) for v in input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
    return entry.loader(split, resolve_root(root), normalization=normalization, augment=bool(augment),
                        input_shape=input_shape, download=download, verify=verify)


def load_fewshot(name: str, split: str, root: str | Path | None = None, download: bool = False, *,
                 verify: bool = True, seed: int = 0):
    """A few-shot (Tables 4/5) split as a :class:`~mebqat.data.fewshot.FewShotSplit`.

    ``seed`` selects the build of a stand-in (real datasets ignore it); ``verify`` as in
    :func:`load_supervised`."""
    entry = _entry_of_kind(name, "fewshot")
    _check_choice("split", split, FEWSHOT_SPLITS)
    return entry.loader(split, resolve_root(root), download=download, verify=verify, seed=int(seed))


def build_standin(name: str, root: str | Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Build (or reuse) a stand-in's cache; returns a summary (path, bytes, classes, build seconds...)."""
    entry = get_dataset_entry(name)
    if entry.build is None:
        raise ValueError(f"dataset {name!r} is not a stand-in; nothing to build (it is loaded from its files)")
    return entry.build(resolve_root(root), int(seed))
