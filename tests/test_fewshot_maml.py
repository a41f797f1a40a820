"""FOMAML (official §4.3–§4.4): the inner loop adapts exactly the adapt set, the meta-gradient equals
learn2learn's first-order MAML, and the batched (vmap) engine equals the sequential one."""

from __future__ import annotations

import re

import pytest
import torch
from fewshot_synthetic import make_batch, max_relative_difference, small_net, state
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from mebqat.data import Episode, unstack_episodes
from mebqat.kernels import (
    LEARNED_STEPS_ADAPT_KINDS,
    OFFICIAL_ADAPT_KINDS,
    InnerLoop,
    adapt_set,
    fomaml_batched,
    fomaml_sequential,
    sgd_adapt,
)
from mebqat.models import parameter_kinds
from mebqat.quant import BitwidthTask as T
from mebqat.quant import task_tensor

FP = T(None, None)
MIXED = [T(2, 2), T(4, None), FP, T(8, 3), T(16, 16), T(3, 5)]


class FixedTaskLearner(nn.Module):
    """The model at one Python task, as an ordinary module whose only parameters are the adapt set.

    learn2learn's MAML adapts every parameter of the module it wraps. The authors' inner loop adapts conv
    and linear weights and biases but not BN β (nor the LSQ steps), so β and the steps are kept out of
    this module: they are leaf tensors held outside it (learn2learn neither clones nor updates them), and
    the query loss's backward still reaches them, as FOMAML's meta-gradient covers every parameter.
    """

    def __init__(self, model, params, adapt, outside, buffers, task):
        super().__init__()
        self.key = {name: name.replace(".", "__") for name in sorted(adapt)}  # ParameterDict keys have no dots
        self.fast = nn.ParameterDict({key: nn.Parameter(params[name].clone()) for name, key in self.key.items()})
        object.__setattr__(self, "context", (model, outside, buffers, task))  # not a submodule: never cloned

    def forward(self, x):
        model, outside, buffers, task = self.context
        fast = {name: self.fast[key] for name, key in self.key.items()}
        return functional_call(model, ({**outside, **fast}, buffers), (x, task))


def learn2learn_meta_gradient(model, params, buffers, episode: Episode, task, inner: InnerLoop):
    import learn2learn as l2l  # ~5 s: only this test pays for it

    outside = {name: p.clone().requires_grad_() for name, p in params.items() if name not in inner.adapt}
    learner_module = FixedTaskLearner(model, params, inner.adapt, outside, buffers, task)
    maml = l2l.algorithms.MAML(learner_module, lr=inner.lr, first_order=True)
    learner = maml.clone()
    for _ in range(inner.steps):
        learner.adapt(F.cross_entropy(learner(episode.support_x), episode.support_y))
    query_loss = F.cross_entropy(learner(episode.query_x), episode.query_y)
    query_loss.backward()
    grads = {name: learner_module.fast[key].grad for name, key in learner_module.key.items()}
    grads.update({name: torch.zeros_like(p) if p.grad is None else p.grad for name, p in outside.items()})
    return grads, query_loss.detach()


def test_meta_gradient_equals_learn2learn_first_order_maml_at_full_precision():
    model = small_net("maml_convnet", dtype=torch.float32, ways=5)
    params, buffers = state(model)
    episodes = make_batch(3, ways=5, shots=2, queries=3, seed=11, dtype=torch.float32)
    inner = InnerLoop(lr=0.1, steps=5, adapt=adapt_set(model, OFFICIAL_ADAPT_KINDS))
    assert not any(parameter_kinds(model)[name] == "bn" for name in inner.adapt)
    sequential = fomaml_sequential(model, params, buffers, episodes, [FP] * 3, inner)
    batched = fomaml_batched(model, params, buffers, episodes, [FP] * 3, inner)
    for i, episode in enumerate(unstack_episodes(episodes)):
        expected, expected_loss = learn2learn_meta_gradient(model, params, buffers, episode, FP, inner)
        assert any(expected[name].abs().max() > 1e-3 for name in params if parameter_kinds(model)[name] == "bn")
        for result in (sequential, batched):
            # float32: the batched engine's grouped convolutions round differently by ~1e-7 relative, which
            # five inner steps amplify to a few 1e-6 of the largest gradient; 1e-4 leaves a wide margin
            # while a wrong adapt set, a second-order term or a missing step moves it by O(1)
            got = {name: g[i] for name, g in result.grads.items()}
            assert max_relative_difference(got, expected) < 1e-4
            torch.testing.assert_close(result.query_loss[i], expected_loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("setting", ["quantized-activations", "official-adapt-set"])
def test_batched_equals_sequential_in_float64_with_a_bitwidth_task_per_episode(setting):
    """Exact in float64 (to ~1e-10 of the largest gradient).

    ``quantized-activations``: every kind of task, with parameters that make max-pool ties exact in
    both engines (see ``tie_safe``); the conv biases, zero there, stay out of the inner loop.
    ``official-adapt-set``: weights and all biases adapted, at tasks whose activations are FP (the
    weights are quantized at mixed bitwidths), where no exact ties arise.
    """
    model = small_net("maml_convnet", ways=5)
    kinds = parameter_kinds(model)
    if setting == "quantized-activations":
        params, buffers = state(model, safe=True)
        tasks = MIXED
        adapt = frozenset(n for n in params if kinds[n] == "weight" or n == "classifier.bias")
    else:
        params, buffers = state(model)
        tasks = [T(2, None), T(4, None), FP, T(8, None), T(16, None), T(3, None)]
        adapt = adapt_set(model, OFFICIAL_ADAPT_KINDS)
    episodes = make_batch(len(tasks), ways=5, shots=2, queries=3, seed=5)
    inner = InnerLoop(lr=0.1, steps=5, adapt=adapt)
    batched = fomaml_batched(model, params, buffers, episodes, task_tensor(tasks), inner, chunk_size=4)
    sequential = fomaml_sequential(model, params, buffers, episodes, tasks, inner)
    torch.testing.assert_close(batched.query_loss, sequential.query_loss, rtol=0, atol=1e-12)
    assert torch.equal(batched.query_accuracy, sequential.query_accuracy)
    assert max_relative_difference(batched.grads, sequential.grads) < 1e-10
    # the tasks really differ: the same episode under another task gives another gradient
    swapped = fomaml_sequential(model, params, buffers, episodes, tasks[1:] + tasks[:1], inner)
    assert max_relative_difference(swapped.grads, sequential.grads) > 1e-3


def test_batched_equals_sequential_in_float32_at_full_precision():
    model = small_net("maml_convnet", dtype=torch.float32, ways=5)
    params, buffers = state(model)
    episodes = make_batch(4, ways=5, shots=2, queries=3, seed=7, dtype=torch.float32)
    inner = InnerLoop(lr=0.1, steps=5, adapt=adapt_set(model))
    batched = fomaml_batched(model, params, buffers, episodes, [FP] * 4, inner)
    sequential = fomaml_sequential(model, params, buffers, episodes, [FP] * 4, inner)
    # no quantizer is active, so only float32 rounding separates them (tolerance as in the learn2learn test)
    torch.testing.assert_close(batched.query_loss, sequential.query_loss, rtol=1e-5, atol=1e-6)
    assert max_relative_difference(batched.grads, sequential.grads) < 1e-4


@pytest.mark.parametrize("kinds", [OFFICIAL_ADAPT_KINDS, LEARNED_STEPS_ADAPT_KINDS], ids=["official", "learned-steps"])
def test_inner_loop_moves_exactly_the_adapt_set(kinds):
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model)
    episode = unstack_episodes(make_batch(1, ways=5, shots=2, queries=3, seed=2))[0]
    inner = InnerLoop(lr=0.1, steps=3, adapt=adapt_set(model, kinds))
    adapted = sgd_adapt(model, params, buffers, episode.support_x, episode.support_y, T(3, 3), inner)
    model_kinds = parameter_kinds(model)
    for name, before in params.items():
        if name not in inner.adapt:
            assert torch.equal(adapted[name], before), f"{name} is outside the adapt set but moved"
        elif model_kinds[name] != "bias" or name == "classifier.bias":
            # conv biases right before a BatchNorm have a zero gradient in exact arithmetic
            assert not torch.equal(adapted[name], before), f"{name} is in the adapt set but did not move"
    assert {model_kinds[n] for n in params if n not in inner.adapt} >= {"bn"}
    if kinds == OFFICIAL_ADAPT_KINDS:
        assert {model_kinds[n] for n in params if n not in inner.adapt} == {"bn", "weight_step", "activation_step"}


def test_meta_gradient_covers_parameters_outside_the_adapt_set():
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model)
    episodes = make_batch(2, ways=5, shots=2, queries=3, seed=4)
    inner = InnerLoop(lr=0.1, steps=2, adapt=adapt_set(model))
    result = fomaml_sequential(model, params, buffers, episodes, [T(2, 2), T(5, 4)], inner)
    for name, kind in parameter_kinds(model).items():
        if kind in ("bn", "weight_step", "activation_step"):
            assert result.grads[name].abs().max() > 0, name
    assert result.query_loss.shape == result.query_accuracy.shape == (2,)
    assert ((result.query_accuracy >= 0) & (result.query_accuracy <= 1)).all()


def _bad_calls(model, params, buffers, episodes, inner):
    two = [T(2, 2), T(3, 3)]
    yield "shape [n, 2]", lambda: fomaml_batched(model, params, buffers, episodes, torch.tensor([2, 2]), inner)
    yield "shape [n, 2]", lambda: fomaml_batched(model, params, buffers, episodes, torch.full((2, 3), 4), inner)
    yield "integer codes", lambda: fomaml_batched(model, params, buffers, episodes, torch.full((2, 2), 4.0), inner)
    yield "one task per episode", lambda: fomaml_sequential(model, params, buffers, episodes, two * 2, inner)
    yield "not a valid lsq task", lambda: fomaml_batched(model, params, buffers, episodes, [T(1, 1)] * 2, inner)
    short = episodes._replace(support_y=episodes.support_y[:, :-1])
    yield "one label per image", lambda: fomaml_batched(model, params, buffers, short, two, inner)
    yield (
        "classifier has 5 outputs",
        lambda: fomaml_batched(model, params, buffers, episodes._replace(query_y=episodes.query_y + 5), two, inner),
    )
    one_query_set = episodes._replace(query_x=episodes.query_x[:1], query_y=episodes.query_y[:1])
    yield "batch size", lambda: fomaml_batched(model, params, buffers, one_query_set, two, inner)
    yield "stacked batch", lambda: fomaml_batched(model, params, buffers, unstack_episodes(episodes)[0], two, inner)
    yield (
        "parameters are torch.float64",
        lambda: fomaml_batched(
            model, params, buffers, Episode(*(t.float() if t.is_floating_point() else t for t in episodes)), two, inner
        ),
    )
    yield (
        "not parameters of the model",
        lambda: fomaml_batched(
            model, params, buffers, episodes, two, InnerLoop(0.1, 1, frozenset({"features.1.weight"}))
        ),
    )
    nan_steps = {
        n: torch.full_like(p, float("nan")) if "quantizer.step" in n and n.startswith("features.4") else p
        for n, p in params.items()
    }
    yield "not calibrated", lambda: fomaml_batched(model, nan_steps, buffers, episodes, two, inner)


def test_bad_input_is_refused_with_a_message_naming_the_problem():
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model)
    episodes = make_batch(2, ways=5, shots=1, queries=2, seed=1)
    inner = InnerLoop(0.1, 1, adapt_set(model))
    for message, call in _bad_calls(model, params, buffers, episodes, inner):
        with pytest.raises((ValueError, TypeError), match=re.escape(message)):
            call()
    with pytest.raises(ValueError, match="adapt set is empty"):
        InnerLoop(0.1, 5, frozenset())
    with pytest.raises(ValueError, match="unknown parameter kinds"):
        adapt_set(model, {"weights"})
    running = small_net("maml_convnet", ways=5, track_running_stats=True)
    with pytest.raises(ValueError, match="track_running_stats=False"):
        fomaml_batched(running, *state(running), episodes, [T(2, 2)] * 2, inner)


def test_batched_engine_has_no_cross_talk_between_episodes():
    """Generic parameters (not tie-safe), float64: an episode's result does not depend on the other
    episodes of the meta-batch, on its position in it, or on the vmap chunk size."""
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model)
    episodes = make_batch(4, ways=5, shots=2, queries=3, seed=13)
    tasks = MIXED[:4]
    inner = InnerLoop(lr=0.1, steps=3, adapt=adapt_set(model))
    whole = fomaml_batched(model, params, buffers, episodes, tasks, inner)
    reversed_batch = Episode(*(field.flip(0) for field in episodes))
    backwards = fomaml_batched(model, params, buffers, reversed_batch, tasks[::-1], inner, chunk_size=3)
    assert max_relative_difference({n: g.flip(0) for n, g in backwards.grads.items()}, whole.grads) < 1e-12
    pair = fomaml_batched(model, params, buffers, Episode(*(field[1:3] for field in episodes)), tasks[1:3], inner)
    assert max_relative_difference(pair.grads, {n: g[1:3] for n, g in whole.grads.items()}) < 1e-12
