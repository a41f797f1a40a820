"""Prototypical Networks (official §4.5–§4.6): the loss on a hand-checkable example, MEBQAT-PN's batched
engine against the sequential one, and the running-statistics path of PN / PN+QAT."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from fewshot_synthetic import make_batch, max_relative_difference, small_net, state

from mebqat.data import unstack_episodes
from mebqat.kernels import pn_batched, pn_sequential, prototypical_loss
from mebqat.quant import BitwidthTask as T
from mebqat.quant import task_tensor

FP = T(None, None)


def test_prototypical_loss_on_a_hand_checkable_example():
    # 3 classes, labels deliberately not in sorted order; 2-D embeddings
    support_z = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 2.0], [5.0, 5.0], [3.0, 5.0]])
    support_y = np.array([2, 2, 0, 0, 1, 1])
    query_z = np.array([[1.0, 0.5], [0.0, 3.0], [4.0, 4.0], [1.0, 3.0]])
    query_y = np.array([2, 0, 1, 1])  # the last query is nearer class 0's prototype: a miss
    prototypes = np.stack([support_z[support_y == c].mean(0) for c in range(3)])
    distances = ((query_z[:, None, :] - prototypes[None, :, :]) ** 2).sum(-1)
    log_p = -distances - np.log(np.exp(-distances).sum(1, keepdims=True))
    expected_loss = -log_p[np.arange(4), query_y].mean()
    expected_accuracy = (distances.argmin(1) == query_y).mean()
    assert expected_accuracy == 0.75

    loss, accuracy = prototypical_loss(
        torch.tensor(support_z), torch.tensor(support_y), torch.tensor(query_z), torch.tensor(query_y), ways=3
    )
    assert loss.item() == pytest.approx(expected_loss, rel=1e-12)
    assert accuracy.item() == pytest.approx(expected_accuracy)
    # sample order within the support set does not matter, only the labels
    order = torch.tensor([5, 2, 0, 4, 1, 3])
    loss2, _ = prototypical_loss(
        torch.tensor(support_z)[order],
        torch.tensor(support_y)[order],
        torch.tensor(query_z),
        torch.tensor(query_y),
        ways=3,
    )
    assert loss2.item() == pytest.approx(expected_loss, rel=1e-12)


def test_mebqat_pn_batched_equals_sequential_in_float64():
    model = small_net("proto_convnet")
    params, buffers = state(model, safe=True)  # exact max-pool ties: see fewshot_synthetic.tie_safe
    episode = unstack_episodes(make_batch(1, ways=6, shots=2, queries=3, seed=9))[0]
    tasks = [T(2, 2), T(4, None), FP, T(8, 3)]
    batched = pn_batched(model, params, buffers, episode, task_tensor(tasks))
    sequential = pn_sequential(model, params, buffers, episode, tasks)
    torch.testing.assert_close(batched.loss, sequential.loss, rtol=0, atol=1e-12)
    assert torch.equal(batched.accuracy, sequential.accuracy)
    assert max_relative_difference(batched.grads, sequential.grads) < 1e-10
    # different tasks, different losses (with the shared LSQ step of the official code, (2,2) and (8,3)
    # may coincide where no value reaches the 2-bit clipping level: official §8.1)
    assert len(set(sequential.loss.tolist())) >= 3
    assert batched.grads["features.1.weight"].shape == (4, 8)


def test_pn_batched_equals_sequential_in_float32_at_full_precision():
    model = small_net("proto_convnet", dtype=torch.float32)
    params, buffers = state(model)
    episode = unstack_episodes(make_batch(1, ways=6, shots=2, queries=3, seed=9, dtype=torch.float32))[0]
    batched = pn_batched(model, params, buffers, episode, [FP] * 2)
    sequential = pn_sequential(model, params, buffers, episode, [FP] * 2)
    # no quantizer and no adaptation: only float32 rounding of the batched convolution (~1e-7) separates them
    torch.testing.assert_close(batched.loss, sequential.loss, rtol=1e-6, atol=1e-6)
    assert max_relative_difference(batched.grads, sequential.grads) < 1e-5


@pytest.mark.parametrize("task", [T(6, 6), FP], ids=str)
def test_running_statistics_path_updates_a_copy_of_the_buffers_like_an_eager_train_step(task):
    model = small_net("proto_convnet", track_running_stats=True)
    params, buffers = state(model)
    originals = {name: b.clone() for name, b in buffers.items()}
    episode = unstack_episodes(make_batch(1, ways=4, shots=2, queries=3, seed=6))[0]
    result = pn_sequential(model, params, buffers, episode, [task])
    assert all(torch.equal(buffers[n], originals[n]) for n in buffers), "the given buffers must not change"

    # reference: the module itself, one train-mode forward and backward
    model.train()
    model.zero_grad()
    x = torch.cat([episode.support_x, episode.query_x])
    z = model(x, task)
    n_support = len(episode.support_y)
    loss, _ = prototypical_loss(z[:n_support], episode.support_y, z[n_support:], episode.query_y, ways=4)
    loss.backward()
    for name, b in model.named_buffers():
        if "running" in name or "num_batches" in name:
            assert not torch.equal(b, originals[name]), name
            torch.testing.assert_close(result.buffers[name], b, rtol=1e-12, atol=1e-12, msg=name)
    torch.testing.assert_close(result.loss[0], loss.detach(), rtol=1e-12, atol=1e-12)
    for name, p in model.named_parameters():
        expected = torch.zeros_like(p) if p.grad is None else p.grad
        torch.testing.assert_close(result.grads[name][0], expected, rtol=1e-10, atol=1e-12, msg=name)


def test_bad_input():
    model = small_net("proto_convnet")
    params, buffers = state(model)
    batch = make_batch(2, ways=4, shots=2, queries=3, seed=1)
    episode = unstack_episodes(batch)[0]
    with pytest.raises(ValueError, match=re.escape("[n, C, H, W] (one episode)")):
        pn_batched(model, params, buffers, batch, [T(2, 2)])
    with pytest.raises(ValueError, match="needs at least one support image"):
        no_class_1 = episode._replace(support_y=episode.support_y.masked_fill(episode.support_y == 1, 0))
        pn_sequential(model, params, buffers, no_class_1, [T(2, 2)])
    with pytest.raises(ValueError, match="query labels must lie in"):
        pn_sequential(model, params, buffers, episode._replace(query_y=episode.query_y + 1), [T(2, 2)])
    running = small_net("proto_convnet", track_running_stats=True)
    with pytest.raises(ValueError, match="use pn_sequential"):
        pn_batched(running, *state(running), episode, [T(2, 2)])
