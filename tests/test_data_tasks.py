"""The fixed meta-test set: identical across builds for a seed, different for another, stored once as
indices and labels, and refused when the data changed under it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mebqat.data import EpisodeSampler, fixed_test_tasks, load_fewshot
from mebqat.data.storage import load_arrays, save_arrays


@pytest.fixture(scope="module")
def test_split(data_root):
    return load_fewshot("glyphs28", "test", data_root)


def test_600_tasks_are_identical_across_builds(test_split, tmp_path):
    a = fixed_test_tasks(test_split, 20, 5, 15, num_tasks=600, seed=0, cache_dir=tmp_path / "a")
    b = fixed_test_tasks(test_split, 20, 5, 15, num_tasks=600, seed=0, cache_dir=tmp_path / "b")
    assert len(a) == len(b) == 600
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.labels, b.labels)
    assert a.path.read_bytes() == b.path.read_bytes()
    c = fixed_test_tasks(test_split, 20, 5, 15, num_tasks=600, seed=1, cache_dir=tmp_path / "a")
    assert c.fingerprint != a.fingerprint and not np.array_equal(c.indices, a.indices)
    assert c.path != a.path


def test_tasks_are_the_seeded_samplers_episodes(test_split, tmp_path):
    tasks = fixed_test_tasks(test_split, 20, 1, 15, num_tasks=30, seed=4, cache_dir=tmp_path)
    sampler = EpisodeSampler(test_split, 20, 1, 15, seed=4)
    for i in range(30):
        expected = sampler.sample()
        assert all(torch.equal(x, y) for x, y in zip(tasks[i], expected, strict=True))
    batch = tasks.batch([0, 5, 29])
    assert batch.support_x.shape == (3, 20, 1, 28, 28) and batch.query_y.shape == (3, 300)
    assert torch.equal(batch.query_x[1], tasks[5].query_x)
    with pytest.raises(IndexError):
        tasks[30]


def test_stored_once_without_images_and_reused(test_split, tmp_path):
    tasks = fixed_test_tasks(test_split, 20, 5, 15, num_tasks=600, seed=0, cache_dir=tmp_path)
    stamp = tasks.path.stat().st_mtime_ns
    with np.load(tasks.path) as stored:
        assert set(stored.files) == {"__meta__", "indices", "labels"}
        assert stored["indices"].shape == (600, 20, 20) and stored["labels"].shape == (600, 20)
    assert tasks.path.stat().st_size < 600 * 20 * 20 * 8  # indices, not 240,000 images
    again = fixed_test_tasks(test_split, 20, 5, 15, num_tasks=600, seed=0, cache_dir=tmp_path)
    assert again.fingerprint == tasks.fingerprint and tasks.path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [tasks.path.name]
    default = fixed_test_tasks(test_split, 20, 5, 15, num_tasks=600, seed=0)  # cache under the data root
    assert default.path.parent == test_split.root / "tasks" and default.fingerprint == tasks.fingerprint


def test_a_stored_set_is_bound_to_its_data(test_split, data_root, tmp_path):
    tasks = fixed_test_tasks(test_split, 5, 1, 15, num_tasks=10, seed=0, cache_dir=tmp_path)
    val = load_fewshot("glyphs28", "val", data_root)
    (tmp_path / tasks.path.name.replace("-test-", "-val-")).write_bytes(tasks.path.read_bytes())
    with pytest.raises(ValueError, match="drawn from different data"):
        fixed_test_tasks(val, 5, 1, 15, num_tasks=10, seed=0, cache_dir=tmp_path)
    meta, arrays = load_arrays(tasks.path)
    arrays["indices"][0, 0, 0] += 1
    save_arrays(tasks.path, meta, **arrays)
    again = fixed_test_tasks(test_split, 5, 1, 15, num_tasks=10, seed=0, cache_dir=tmp_path)  # damaged: redrawn
    assert again.fingerprint == tasks.fingerprint and np.array_equal(again.indices, tasks.indices)
    assert load_arrays(tasks.path)[1]["indices"][0, 0, 0] == tasks.indices[0, 0, 0]
    with pytest.raises(ValueError, match="ways must be an integer"):
        fixed_test_tasks(test_split, 0, 1, 15, cache_dir=tmp_path)
