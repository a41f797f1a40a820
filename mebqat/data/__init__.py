"""Datasets, offline stand-ins and few-shot episodes.

Supervised (Table 2): ``cifar10``, ``svhn`` and the stand-in ``digits`` via :func:`load_supervised`.
A dataset is one module calling :func:`register_dataset`, plus one import line below.
"""

from . import cifar10, digits, svhn  # noqa: F401  (each registers itself)
from .episode import Episode, stack_episodes, unstack_episodes
from .registry import (DatasetInfo, available_datasets, build_standin, dataset_info, get_dataset_entry,
                       load_supervised, register_dataset)
from .storage import DatasetCorruptError, DatasetMissingError, default_data_root
from .supervised import SupervisedDataset

__all__ = ["DatasetCorruptError", "DatasetInfo", "DatasetMissingError", "Episode", "SupervisedDataset",
           "available_datasets", "build_standin", "dataset_info", "default_data_root", "get_dataset_entry",
           "load_supervised", "register_dataset", "stack_episodes", "unstack_episodes"]
