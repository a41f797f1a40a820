"""Episodes through learn2learn's task machinery: shapes, class balance and grouping, support/query
disjointness, label permutations, determinism, isolation from the global ``random`` and resumption."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from mebqat.data import Episode, EpisodeSampler, load_fewshot


@pytest.fixture(scope="module")
def omniglot_like(data_root):
    return load_fewshot("glyphs28", "train", data_root)


@pytest.fixture(scope="module")
def mini_like(data_root):
    return load_fewshot("glyphs84", "train", data_root)


def same(a: Episode, b: Episode) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("ways, shots, queries", [(20, 1, 15), (20, 5, 15), (60, 1, 5), (60, 5, 5)])
def test_episode_structure_omniglot_like(omniglot_like, ways, shots, queries):
    check_episodes(omniglot_like, ways, shots, queries)


@pytest.mark.parametrize("ways, shots, queries", [(5, 1, 15), (5, 5, 15), (30, 1, 15), (20, 5, 15)])
def test_episode_structure_miniimagenet_like(mini_like, ways, shots, queries):
    check_episodes(mini_like, ways, shots, queries)


def check_episodes(data, ways, shots, queries):
    sampler = EpisodeSampler(data, ways, shots, queries, seed=3)
    label_orders = set()
    for _ in range(6):
        plan = sampler.plan()
        episode = data.episode(plan.indices, plan.labels, shots)
        c, h, w = data.input_shape
        assert episode.support_x.shape == (ways * shots, c, h, w) and episode.query_x.shape == (ways * queries, c, h, w)
        assert episode.support_y.dtype == torch.long and episode.ways == ways
        # labels: a permutation of 0..N-1, one per class row, K support and Q queries each
        assert sorted(plan.labels.tolist()) == list(range(ways))
        assert torch.equal(torch.bincount(episode.support_y, minlength=ways), torch.full((ways,), shots))
        assert torch.equal(torch.bincount(episode.query_y, minlength=ways), torch.full((ways,), queries))
        # grouped by class, one class order in support and query
        assert torch.equal(episode.support_y.view(ways, shots)[:, 0], episode.query_y.view(ways, queries)[:, 0])
        assert (episode.support_y.view(ways, shots) == episode.support_y.view(ways, shots)[:, :1]).all()
        # each row is one true class, N distinct classes, no image in both support and query
        true = data.targets[plan.indices]
        assert (true == true[:, :1]).all() and len(set(true[:, 0])) == ways
        assert not set(plan.indices[:, :shots].ravel()) & set(plan.indices[:, shots:].ravel())
        assert len(set(plan.indices.ravel())) == ways * (shots + queries)
        assert torch.equal(episode.support_x, data.load(plan.indices[:, :shots].reshape(-1)))
        label_orders.add(tuple(plan.labels.tolist()))
    assert len(label_orders) > 1  # the permutation varies from episode to episode


def test_sample_batch_stacks_episodes(omniglot_like):
    batch = EpisodeSampler(omniglot_like, 20, 1, 15, seed=0).sample_batch(4)
    assert batch.support_x.shape == (4, 20, 1, 28, 28) and batch.query_y.shape == (4, 300)
    assert batch.ways == 20


def test_same_seed_same_episodes_regardless_of_global_random(mini_like):
    random.seed(1)
    first = EpisodeSampler(mini_like, 5, 5, 15, seed=11)
    random.seed(2)
    second = EpisodeSampler(mini_like, 5, 5, 15, seed=11)
    other = EpisodeSampler(mini_like, 5, 5, 15, seed=12)
    differs = False
    for _ in range(5):
        random.random()
        p, q, r = first.plan(), second.plan(), other.plan()
        assert np.array_equal(p.indices, q.indices) and np.array_equal(p.labels, q.labels)
        differs |= not np.array_equal(p.indices, r.indices)
    assert differs


def test_the_callers_random_stream_is_left_alone(omniglot_like):
    sampler = EpisodeSampler(omniglot_like, 20, 5, 15, seed=0)
    random.seed(42)
    expected = [random.random() for _ in range(3)]
    random.seed(42)
    observed = []
    for _ in range(3):
        sampler.sample()
        observed.append(random.random())
    assert observed == expected


def test_state_dict_resumes_exactly(omniglot_like):
    sampler = EpisodeSampler(omniglot_like, 60, 1, 5, seed=5)
    for _ in range(3):
        sampler.sample()
    state = json.loads(json.dumps(sampler.state_dict()))  # plain data: fits a JSON or torch checkpoint
    ahead = [sampler.sample() for _ in range(2)]
    resumed = EpisodeSampler(omniglot_like, 60, 1, 5, seed=999)
    resumed.load_state_dict(state)
    assert resumed.num_sampled == 3 and resumed.seed == 5
    assert all(same(x, resumed.sample()) for x in ahead)
    with pytest.raises(ValueError, match="sampler state is for"):
        EpisodeSampler(omniglot_like, 20, 1, 5, seed=5).load_state_dict(state)


def test_impossible_episodes_are_refused_with_the_reason(mini_like):
    with pytest.raises(ValueError, match="65-way episodes need 65 classes; glyphs84 train has 64"):
        EpisodeSampler(mini_like, 65, 1, 1)
    with pytest.raises(ValueError, match="30 shots \\+ 15 queries need 45 samples per class; glyphs84 train has as few as 40"):
        EpisodeSampler(mini_like, 5, 30, 15)
    with pytest.raises(ValueError, match="shots must be an integer >= 1"):
        EpisodeSampler(mini_like, 5, 0, 15)
