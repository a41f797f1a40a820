"""Meta-test (official §5.2–§5.3): per-(bitwidth, episode) accuracies from the batched engine equal the
sequential ones, and both equal a direct evaluation of the module where there is nothing to adapt."""

from __future__ import annotations

import pytest
import torch
from fewshot_synthetic import make_batch, small_net, state

from mebqat.data import Episode, unstack_episodes
from mebqat.kernels import (
    InnerLoop,
    adapt_set,
    maml_metatest_batched,
    maml_metatest_sequential,
    pn_metatest_batched,
    pn_metatest_sequential,
    prototypical_loss,
)
from mebqat.models import parameter_kinds
from mebqat.quant import BitwidthTask as T

FP = T(None, None)
UNIFORM = [T(2, 2), T(3, 3), T(8, 8), FP]


def _split(batch: Episode, first: int) -> list[Episode]:
    """The fixed task set arrives as several stacked batches."""
    return [Episode(*(f[:first] for f in batch)), Episode(*(f[first:] for f in batch))]


def _tie_safe_inner(model, params) -> InnerLoop:
    kinds = parameter_kinds(model)
    return InnerLoop(0.1, 5, frozenset(n for n in params if kinds[n] == "weight" or n == "classifier.bias"))


def test_maml_metatest_batched_equals_sequential_in_float64():
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model, safe=True)  # exact max-pool ties: see fewshot_synthetic.tie_safe
    batches = _split(make_batch(7, ways=5, shots=2, queries=3, seed=21), 4)
    inner = _tie_safe_inner(model, params)
    batched = maml_metatest_batched(model, params, buffers, batches, UNIFORM, inner, episode_chunk=3, task_chunk=3)
    sequential = maml_metatest_sequential(model, params, buffers, batches, UNIFORM, inner)
    assert batched.shape == sequential.shape == (4, 7)
    assert torch.equal(batched, sequential)
    assert len(set(sequential.flatten().tolist())) > 2  # not a degenerate constant


def test_maml_metatest_in_float32_agrees_within_a_tolerance():
    """float32: the batched convolutions round differently by ~1e-7, which now and then moves a value
    across a quantizer's rounding boundary and may flip a query prediction. Measured over seeds: at most
    ~3% of the (task, episode) accuracies differ, by one query; we allow 10% and 2 points on the mean."""
    model = small_net("maml_convnet", dtype=torch.float32, ways=5)
    params, buffers = state(model, safe=True)
    episodes = make_batch(12, ways=5, shots=2, queries=3, seed=22, dtype=torch.float32)
    inner = _tie_safe_inner(model, params)
    batched = maml_metatest_batched(model, params, buffers, episodes, UNIFORM, inner, episode_chunk=5)
    sequential = maml_metatest_sequential(model, params, buffers, episodes, UNIFORM, inner)
    assert (batched != sequential).float().mean() <= 0.1
    assert (batched.mean(1) - sequential.mean(1)).abs().max() <= 0.02


def test_with_generic_parameters_the_engines_agree_in_distribution():
    """Without tie-safe parameters a quantized task's per-episode accuracies differ between the engines
    (in float64 too): the engines break exact max-pool ties among quantized values differently and then
    fine-tune along different, equally valid, subgradients. At FP nothing is tied and they agree; at the
    quantized tasks the paired differences average out (within 4 standard errors of their mean).
    Compare methods with one engine throughout."""
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model)
    episodes = make_batch(24, ways=5, shots=2, queries=3, seed=25)
    inner = InnerLoop(0.1, 5, adapt_set(model))
    batched = maml_metatest_batched(model, params, buffers, episodes, UNIFORM, inner)
    sequential = maml_metatest_sequential(model, params, buffers, episodes, UNIFORM, inner)
    assert torch.equal(batched[-1], sequential[-1])
    difference = batched[:-1] - sequential[:-1]
    standard_error = difference.std(1) / difference.shape[1] ** 0.5
    assert (difference.mean(1).abs() <= 4 * standard_error + 1e-12).all()


def test_maml_metatest_without_fine_tuning_is_the_modules_own_query_accuracy():
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model)
    episodes = make_batch(3, ways=5, shots=2, queries=4, seed=23)
    inner = InnerLoop(0.1, 0, frozenset())
    accuracies = maml_metatest_batched(model, params, buffers, episodes, UNIFORM, inner)
    for t, task in enumerate(UNIFORM):
        for e, episode in enumerate(unstack_episodes(episodes)):
            with torch.no_grad():
                expected = (model(episode.query_x, task).argmax(1) == episode.query_y).double().mean()
            assert accuracies[t, e] == expected


@pytest.mark.parametrize("running", [False, True], ids=["transductive", "running-statistics"])
def test_pn_metatest_batched_equals_sequential_and_the_modules_eval_forward(running):
    model = small_net("proto_convnet", track_running_stats=running)
    if running:  # give the running statistics values that differ from any batch's
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name.endswith("running_mean"):
                    b.uniform_(-0.2, 0.2)
                elif name.endswith("running_var"):
                    b.uniform_(0.5, 2.0)
    params, buffers = state(model, safe=True)
    model.load_state_dict(params, strict=False)
    episodes = make_batch(5, ways=4, shots=2, queries=3, seed=24)
    snapshot = {n: b.clone() for n, b in buffers.items()}
    model.train()
    batched = pn_metatest_batched(model, params, buffers, episodes, UNIFORM, episode_chunk=2)
    sequential = pn_metatest_sequential(model, params, buffers, episodes, UNIFORM)
    assert model.training, "the caller's mode is restored"
    assert all(torch.equal(buffers[n], snapshot[n]) for n in buffers), "meta-test must not touch BN statistics"
    assert torch.equal(batched, sequential)

    model.eval()
    with torch.no_grad():
        for t, task in enumerate(UNIFORM):
            for e, episode in enumerate(unstack_episodes(episodes)):
                z = model(torch.cat([episode.support_x, episode.query_x]), task)
                n = len(episode.support_y)
                _, expected = prototypical_loss(z[:n], episode.support_y, z[n:], episode.query_y, ways=4)
                assert sequential[t, e] == expected


def test_bad_input():
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model)
    episodes = make_batch(2, ways=5, shots=1, queries=2, seed=1)
    inner = InnerLoop(0.1, 1, adapt_set(model))
    with pytest.raises(ValueError, match="no episodes"):
        maml_metatest_batched(model, params, buffers, [], UNIFORM, inner)
    with pytest.raises(ValueError, match="episode_chunk"):
        maml_metatest_batched(model, params, buffers, episodes, UNIFORM, inner, episode_chunk=0)
    with pytest.raises(ValueError, match="no bitwidth tasks"):
        maml_metatest_sequential(model, params, buffers, episodes, [], inner)
    proto = small_net("proto_convnet")
    four_way = make_batch(2, ways=4, shots=1, queries=2, seed=2)
    with pytest.raises(ValueError, match="different numbers of ways"):
        pn_metatest_sequential(proto, *state(proto), [episodes, four_way], UNIFORM)
