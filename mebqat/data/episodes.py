"""N-way K-shot episodes through learn2learn's task machinery.

A ``Taskset`` (``TaskDataset``) over the split's ``MetaDataset`` with two task transforms: ``FusedNWaysKShots`` (N random
classes, K+Q distinct random samples of each, grouped by class) and ``RemapLabels(shuffle=True)`` (a random
permutation of 0..N−1 as labels). The first K samples of each class are its support, the other Q its
queries, so support and query share one class order and never share an image (official-mebqat.md §6).

learn2learn draws from Python's global ``random`` module. The sampler owns a private ``random.Random``
state and swaps it in around each draw, so its episodes depend on its seed alone, the caller's random
stream is left as it was, and ``state_dict()`` captures everything needed to resume.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator, NamedTuple

import numpy as np

from .episode import Episode, stack_episodes
from .fewshot import FewShotSplit
from .l2l import learn2learn


class TaskPlan(NamedTuple):
    """One task without its images: ``indices[i]`` are the K+Q sample indices of the episode's i-th class
    (support first), ``labels[i]`` that class's label in the episode."""
    indices: np.ndarray  # [N, K+Q] int64
    labels: np.ndarray   # [N] int64


def check_episode_shape(split: FewShotSplit, ways: int, shots: int, queries: int) -> None:
    for name, value, low in (("ways", ways, 1), ("shots", shots, 1), ("queries", queries, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if ways > split.num_classes:
        raise ValueError(f"{ways}-way episodes need {ways} classes; {split.info.name} {split.split} has "
                         f"{split.num_classes}")
    if shots + queries > split.min_samples_per_class:
        raise ValueError(f"{shots} shots + {queries} queries need {shots + queries} samples per class; "
                         f"{split.info.name} {split.split} has as few as {split.min_samples_per_class}")


class EpisodeSampler:
    """Random N-way K-shot episodes with Q queries per class, reproducible from ``seed``.

    Works for the "higher-way" training episodes of Prototypical Networks too (e.g. 60-way 1-shot with 5
    queries): any N up to the split's class count."""

    def __init__(self, split: FewShotSplit, ways: int, shots: int, queries: int, seed: int = 0):
        check_episode_shape(split, ways, shots, queries)
        l2l = learn2learn()

        self.split, self.ways, self.shots, self.queries, self.seed = split, int(ways), int(shots), int(queries), seed
        self._random = random.Random(seed)
        self.num_sampled = 0
        meta = split.meta_dataset()
        self._indices_to_labels = meta.indices_to_labels
        self._taskset = l2l.data.Taskset(meta, task_transforms=[
            l2l.data.transforms.FusedNWaysKShots(meta, n=self.ways, k=self.shots + self.queries),
            l2l.data.transforms.RemapLabels(meta, shuffle=True),
        ], num_tasks=-1)

    @contextlib.contextmanager
    def _private_random(self) -> Iterator[None]:
        outer = random.getstate()
        random.setstate(self._random.getstate())
        try:
            yield
        finally:
            self._random.setstate(random.getstate())
            random.setstate(outer)

    def plan(self) -> TaskPlan:
        """The next task as indices and labels (no images loaded)."""
        with self._private_random():
            description = self._taskset.sample_task_description()
        self.num_sampled += 1
        per_class = self.shots + self.queries
        indices = np.array([dd.index for dd in description], dtype=np.int64).reshape(self.ways, per_class)
        classes = np.array([self._indices_to_labels[int(i)] for i in indices.reshape(-1)]).reshape(indices.shape)
        if not (classes == classes[:, :1]).all():
            raise RuntimeError("learn2learn returned a task that is not grouped by class")
        labels = []
        for row in range(self.ways):
            record: Any = (None, int(classes[row, 0]))
            for transform in description[row * per_class].transforms:  # RemapLabels' relabelling
                record = transform(record)
            labels.append(int(record[1]))
        return TaskPlan(indices, np.asarray(labels, dtype=np.int64))

    def sample(self) -> Episode:
        plan = self.plan()
        return self.split.episode(plan.indices, plan.labels, self.shots)

    def sample_batch(self, batch_size: int) -> Episode:
        """``batch_size`` episodes stacked along a new leading dimension."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return stack_episodes([self.sample() for _ in range(batch_size)])

    def __iter__(self) -> Iterator[Episode]:
        while True:
            yield self.sample()

    def _shape(self) -> dict[str, Any]:
        return {"dataset": self.split.info.name, "split": self.split.split, "ways": self.ways, "shots": self.shots,
                "queries": self.queries}

    def state_dict(self) -> dict[str, Any]:
        """Plain data (lists and numbers): the episode shape, the seed it started from, how many episodes
        were drawn and the private random state."""
        version, internal, gauss = self._random.getstate()
        return {**self._shape(), "seed": self.seed, "num_sampled": self.num_sampled,
                "random_state": {"version": version, "internal": list(internal), "gauss_next": gauss}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where the sampler that wrote ``state`` stopped (its seed included)."""
        theirs = {key: state.get(key) for key in self._shape()}
        if theirs != self._shape():
            raise ValueError(f"sampler state is for {theirs}, this sampler is {self._shape()}")
        rs = state["random_state"]
        self._random.setstate((rs["version"], tuple(rs["internal"]), rs["gauss_next"]))
        self.seed, self.num_sampled = state["seed"], int(state["num_sampled"])
