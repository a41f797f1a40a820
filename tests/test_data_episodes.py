"""Episodes from the index sampler: shapes, class balance and grouping, support/query
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
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


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
    with pytest.raises(
        ValueError, match="30 shots \\+ 15 queries need 45 samples per class; glyphs84 train has as few as 40"
    ):
        EpisodeSampler(mini_like, 5, 30, 15)
    with pytest.raises(ValueError, match="shots must be an integer >= 1"):
        EpisodeSampler(mini_like, 5, 0, 15)


def test_the_sampler_draws_what_learn2learns_task_transforms_draw(mini_like):
    """The distribution of learn2learn's FusedNWaysKShots + RemapLabels(shuffle=True): every class, every
    sample of a class and every label equally likely. Both samplers' counts over 3,000 5-way 5+5-shot episodes
    stay within 5 binomial standard deviations of uniform."""
    from mebqat.data.l2l import learn2learn

    l2l = learn2learn()
    meta = l2l.data.MetaDataset(mini_like, labels_to_indices=mini_like.labels_to_indices)
    taskset = l2l.data.Taskset(
        meta,
        task_transforms=[
            l2l.data.transforms.FusedNWaysKShots(meta, n=5, k=10),
            l2l.data.transforms.RemapLabels(meta, shuffle=True),
        ],
        num_tasks=-1,
    )
    random.seed(0)

    def theirs():
        description = taskset.sample_task_description()
        indices = np.array([d.index for d in description]).reshape(5, 10)
        record = (None, int(mini_like.targets[indices[0, 0]]))
        for transform in description[0].transforms:
            record = transform(record)
        return indices, int(record[1])

    ours_sampler = EpisodeSampler(mini_like, 5, 5, 5, seed=0)

    def ours():
        plan = ours_sampler.plan()
        return plan.indices, int(plan.labels[0])

    episodes = 3000
    for draw in (ours, theirs):
        classes = np.zeros(mini_like.num_classes)
        first_label = np.zeros(5)
        class0 = np.asarray(mini_like.labels_to_indices[0])
        in_class0 = np.zeros(len(class0))
        for _ in range(episodes):
            indices, label = draw()
            rows = mini_like.targets[indices[:, 0]]
            classes[rows] += 1
            first_label[label] += 1
            for row in indices[rows == 0]:
                in_class0[np.searchsorted(class0, np.sort(row))] += 1
        for counts, trials, p in (
            (classes, episodes, 5 / mini_like.num_classes),
            (first_label, episodes, 1 / 5),
            (in_class0, classes[0], 10 / len(class0)),
        ):
            expected, sd = trials * p, np.sqrt(trials * p * (1 - p))
            assert np.abs(counts - expected).max() < 5 * sd, (draw.__name__, counts, expected)


def test_a_reduced_split_keeps_its_episodes_and_task_identity(mini_like):
    """``data.image_size``: images reduced once at load time, antialiased, still uint8; the same indices
    give the same episodes (at the smaller size), so stored task sets still apply."""
    half = mini_like.resized(42)
    assert half.images.shape == (len(mini_like), 3, 42, 42) and half.images.dtype == torch.uint8
    assert half.input_shape == (3, 42, 42) and mini_like.input_shape == (3, 84, 84)
    assert half.identity == mini_like.identity and torch.equal(
        torch.as_tensor(half.targets), torch.as_tensor(mini_like.targets)
    )
    # a 2x antialiased reduction of a 2x2 block average stays within a rounding of the block mean
    blocks = mini_like.images[:8].float().reshape(8, 3, 42, 2, 42, 2).mean(dim=(3, 5))
    assert (half.images[:8].float() - blocks).abs().mean() < 2.0
    a = EpisodeSampler(mini_like, 5, 1, 3, seed=4).sample()
    b = EpisodeSampler(half, 5, 1, 3, seed=4).sample()
    assert torch.equal(a.support_y, b.support_y) and b.support_x.shape[-2:] == (42, 42)
    assert mini_like.resized(None) is mini_like and mini_like.resized(84) is mini_like
    with pytest.raises(ValueError, match="image_size 100 is larger than the glyphs84 images"):
        mini_like.resized(100)
