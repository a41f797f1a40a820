"""Datasets, offline stand-ins and few-shot episodes.

Supervised (Table 2): ``cifar10``, ``svhn`` and the stand-in ``digits`` via :func:`load_supervised`.
Few-shot (Tables 4/5): ``omniglot``, ``miniimagenet`` and the stand-ins ``glyphs28`` / ``glyphs84`` via
:func:`load_fewshot`, sampled by :class:`EpisodeSampler`; :func:`fixed_test_tasks` is the stored meta-test
set. A dataset is one module with its loader plus one entry in :mod:`mebqat.core.catalog`.
"""

from ..core.registry import DatasetInfo
from .episode import Episode, stack_episodes, unstack_episodes
from .episodes import EpisodeSampler, TaskPlan
from .fewshot import FewShotSplit
from .fixed_tasks import FixedTaskSet, fixed_test_tasks
from .registry import available_datasets, build_standin, load_fewshot, load_supervised
from .storage import DatasetCorruptError, DatasetMissingError, default_data_root
from .supervised import SupervisedDataset

__all__ = [
    "DatasetCorruptError",
    "DatasetInfo",
    "DatasetMissingError",
    "Episode",
    "EpisodeSampler",
    "FewShotSplit",
    "FixedTaskSet",
    "SupervisedDataset",
    "TaskPlan",
    "available_datasets",
    "build_standin",
    "default_data_root",
    "fixed_test_tasks",
    "load_fewshot",
    "load_supervised",
    "stack_episodes",
    "unstack_episodes",
]
