"""The fixed meta-test set: ``num_tasks`` seeded tasks drawn once, stored on disk as indices and label
permutations (not images), and reused for every bitwidth and every method, so that comparisons are paired
(official-mebqat.md §5.2/§5.3: 600 tasks × 9 bitwidths; the authors drew them unseeded, we seed them)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .episode import Episode
from .episodes import EpisodeSampler, TaskPlan, check_episode_shape
from .fewshot import FewShotSplit
from .storage import cached_arrays, digest

FORMAT = 2  # 2: drawn by the native index sampler (1: through learn2learn)


class FixedTaskSet:
    """``len(tasks)`` tasks; ``tasks[i]`` is an :class:`Episode`, ``tasks.batch(idx)`` a stacked batch,
    ``tasks.fingerprint`` a hex digest of the exact set (split identity, shape, indices and labels)."""

    def __init__(
        self, split: FewShotSplit, shots: int, indices: np.ndarray, labels: np.ndarray, path: Path, fingerprint: str
    ):
        self.split, self.shots, self.indices, self.labels = split, shots, indices, labels
        self.path, self.fingerprint = path, fingerprint
        self.ways = indices.shape[1]
        self.queries = indices.shape[2] - shots

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def sources(self) -> tuple[Path, ...]:
        """The files these tasks come from: the stored task file and the split's."""
        return (self.path, *self.split.sources)

    def plan(self, i: int) -> TaskPlan:
        return TaskPlan(self.indices[i], self.labels[i])

    def __getitem__(self, i: int) -> Episode:
        if not -len(self) <= i < len(self):
            raise IndexError(f"task {i} out of range for {len(self)} tasks")
        return self.split.episode(self.indices[i], self.labels[i], self.shots)

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    def batch(self, indices: Sequence[int]) -> Episode:
        return self.split.episodes([self.plan(int(i)) for i in indices], self.shots)

    def __repr__(self) -> str:
        return (
            f"FixedTaskSet({self.split.info.title} {self.split.split}, {len(self)} tasks, {self.ways}-way "
            f"{self.shots}-shot {self.queries} queries, fingerprint {self.fingerprint[:12]})"
        )


def task_file(
    split: FewShotSplit, ways: int, shots: int, queries: int, num_tasks: int, seed: int, cache_dir: Path
) -> Path:
    build = "" if split.seed is None else f"-build{split.seed}"
    return cache_dir / (
        f"{split.info.name}{build}-{split.split}-{ways}w{shots}s{queries}q-{num_tasks}tasks-seed{seed}-v{FORMAT}.npz"
    )


def fixed_test_tasks(
    split: FewShotSplit,
    ways: int,
    shots: int,
    queries: int,
    num_tasks: int = 600,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> FixedTaskSet:
    """The fixed task set for these arguments: read from ``cache_dir`` (default ``<data root>/tasks``) when
    stored, else drawn with ``EpisodeSampler(split, ways, shots, queries, seed)`` and stored atomically.
    Task ``i`` is the sampler's ``i``-th episode, so two builds with the same arguments are identical."""
    check_episode_shape(split, ways, shots, queries)
    if num_tasks < 1:
        raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
    cache_dir = Path(cache_dir) if cache_dir is not None else split.root / "tasks"
    path = task_file(split, ways, shots, queries, num_tasks, seed, cache_dir)
    identity = {
        "format": FORMAT,
        "split": split.identity,
        "ways": ways,
        "shots": shots,
        "queries": queries,
        "num_tasks": num_tasks,
        "seed": seed,
    }

    def draw() -> tuple[dict, dict[str, np.ndarray]]:
        sampler = EpisodeSampler(split, ways, shots, queries, seed)
        plans = [sampler.plan() for _ in range(num_tasks)]
        indices = np.stack([p.indices for p in plans]).astype(np.int32)
        labels = np.stack([p.labels for p in plans]).astype(np.int32)
        return {"identity": identity, "fingerprint": digest(identity, indices, labels)}, {
            "indices": indices,
            "labels": labels,
        }

    def check(meta: dict, arrays: dict[str, np.ndarray]) -> str | None:
        # a set drawn from other data cannot be reused (the comparison would not be paired); a damaged one is
        # drawn again, identically (task i is the seeded sampler's i-th episode)
        if meta.get("identity") != identity:
            raise ValueError(
                f"the stored task set {path} was drawn from different data "
                f"({meta.get('identity', {}).get('split')}, now {identity['split']}); it cannot be reused "
                f"for a paired comparison: delete it to draw a new one (and re-evaluate the runs "
                f"that used it)"
            )
        if not {"indices", "labels"} <= set(arrays) or digest(
            identity, arrays["indices"], arrays["labels"]
        ) != meta.get("fingerprint"):
            return "does not match its fingerprint (damaged)"
        return None

    _, arrays, _ = cached_arrays(path, draw, check)
    indices, labels = arrays["indices"], arrays["labels"]
    fingerprint = digest(identity, indices, labels)
    return FixedTaskSet(split, shots, indices, labels, path, fingerprint)
