"""N-way K-shot episodes, sampled as index plans (official-mebqat.md §6).

An episode draws N distinct classes uniformly, K + Q distinct samples of each, and a random permutation
of 0..N−1 as labels — the distribution of learn2learn's ``FusedNWaysKShots`` + ``RemapLabels(shuffle=True)``
task transforms (and of torchmeta's ``ClassSplitter`` the authors used), drawn here from the sampler's own
seeded numpy generator: the first K samples of each class are its support, the other Q its queries, so
support and query share one class order and never share an image. A plan is only indices; the images of a
whole meta-batch are gathered in one indexing step, on whatever device holds the split
(:meth:`FewShotSplit.episodes`), so a GPU run never copies episodes through the host one image at a time.
The generator's state is the sampler's whole state: ``state_dict()`` resumes it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from .episode import Episode
from .fewshot import FewShotSplit


class TaskPlan(NamedTuple):
    """One task without its images: ``indices[i]`` are the K+Q sample indices of the episode's i-th class
    (support first), ``labels[i]`` that class's label in the episode."""

    indices: np.ndarray  # [N, K+Q] int64
    labels: np.ndarray  # [N] int64


def check_episode_shape(split: FewShotSplit, ways: int, shots: int, queries: int) -> None:
    for name, value, low in (("ways", ways, 1), ("shots", shots, 1), ("queries", queries, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if ways > split.num_classes:
        raise ValueError(
            f"{ways}-way episodes need {ways} classes; {split.info.name} {split.split} has {split.num_classes}"
        )
    if shots + queries > split.min_samples_per_class:
        raise ValueError(
            f"{shots} shots + {queries} queries need {shots + queries} samples per class; "
            f"{split.info.name} {split.split} has as few as {split.min_samples_per_class}"
        )


class EpisodeSampler:
    """Random N-way K-shot episodes with Q queries per class, reproducible from ``seed``.

    Works for the "higher-way" training episodes of Prototypical Networks too (e.g. 60-way 1-shot with 5
    queries): any N up to the split's class count."""

    def __init__(self, split: FewShotSplit, ways: int, shots: int, queries: int, seed: int = 0):
        check_episode_shape(split, ways, shots, queries)
        self.split, self.ways, self.shots, self.queries, self.seed = split, int(ways), int(shots), int(queries), seed
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.num_sampled = 0
        self._members = [np.asarray(split.labels_to_indices[c], dtype=np.int64) for c in range(split.num_classes)]

    def plan(self) -> TaskPlan:
        """The next task as indices and labels (no images loaded)."""
        per_class = self.shots + self.queries
        classes = self.rng.choice(len(self._members), size=self.ways, replace=False)
        indices = np.stack([self.rng.choice(self._members[c], size=per_class, replace=False) for c in classes])
        labels = self.rng.permutation(self.ways).astype(np.int64)
        self.num_sampled += 1
        return TaskPlan(indices, labels)

    def sample(self) -> Episode:
        plan = self.plan()
        return self.split.episode(plan.indices, plan.labels, self.shots)

    def sample_batch(self, batch_size: int) -> Episode:
        """``batch_size`` episodes stacked along a new leading dimension (gathered in one step)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self.split.episodes([self.plan() for _ in range(batch_size)], self.shots)

    def __iter__(self) -> Iterator[Episode]:
        while True:
            yield self.sample()

    def _shape(self) -> dict[str, Any]:
        return {
            "dataset": self.split.info.name,
            "split": self.split.split,
            "ways": self.ways,
            "shots": self.shots,
            "queries": self.queries,
        }

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the episode shape, the seed it started from, how many episodes were drawn and the
        generator's state."""
        return {
            **self._shape(),
            "seed": self.seed,
            "num_sampled": self.num_sampled,
            "generator": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where the sampler that wrote ``state`` stopped (its seed included)."""
        theirs = {key: state.get(key) for key in self._shape()}
        if theirs != self._shape():
            raise ValueError(f"sampler state is for {theirs}, this sampler is {self._shape()}")
        if not isinstance(state.get("generator"), dict):
            raise ValueError("sampler state has no generator state (written by another version of mebqat)")
        self.rng.bit_generator.state = state["generator"]
        self.seed, self.num_sampled = state["seed"], int(state["num_sampled"])
