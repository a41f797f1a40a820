"""The outer-gradient rule (official §4.3 "Aggregate", §4.4, §8.10–§8.11): ordinary parameters ÷ B,
LSQ steps ÷ the number of tasks that quantize them, elementwise clamp to ±10."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fewshot_synthetic import make_batch, small_net, state

from mebqat.kernels import InnerLoop, adapt_set, aggregate_meta_gradients, fomaml_batched, task_usage
from mebqat.models import parameter_kinds
from mebqat.quant import BitwidthTask as T

TASKS = [T(2, 2), T(4, None), T(None, None), T(8, 3)]


def _random_grads(model, count: int, seed: int) -> dict[str, torch.Tensor]:
    """Per-task gradients with some entries far outside ±10, also for tasks that do not use a step (the
    rule must ignore those)."""
    gen = torch.Generator().manual_seed(seed)
    grads = {}
    for name, p in model.named_parameters():
        g = torch.randn(count, *p.shape, generator=gen, dtype=torch.float64) * 3
        g.view(count, -1)[:, 0] = torch.tensor([60.0, 20.0, -90.0, 50.0][:count], dtype=torch.float64)
        grads[name] = g
    return grads


def _expected(model, grads, tasks, divisor: str) -> dict[str, np.ndarray]:
    """The rule written out per task from the task definitions (not from parameter_usage)."""
    kinds = parameter_kinds(model)
    out = {}
    for name, g in grads.items():
        g = g.numpy()
        kind = kinds[name]
        if divisor == "batch" or kind not in ("weight_step", "activation_step"):
            value = g.sum(0) / len(tasks)
        else:
            per_bitwidth = g.shape[1] > 1
            bits_of = [t.w if kind == "weight_step" else t.a for t in tasks]
            value = np.zeros(g.shape[1:])
            slots = range(g.shape[1])
            for slot in slots:
                users = [
                    i
                    for i, b in enumerate(bits_of)
                    if b is not None
                    and (not per_bitwidth or model.get_submodule(name.rsplit(".", 1)[0]).slot_bits[slot] == b)
                ]
                if users:
                    value[slot] = sum(g[i][slot] for i in users) / len(users)
        out[name] = np.clip(value, -10, 10)
    return out


@pytest.mark.parametrize("per_bitwidth", [False, True], ids=["shared-steps", "per-bitwidth-steps"])
@pytest.mark.parametrize("divisor", ["steps_by_usage", "batch"])
def test_aggregation_rule(per_bitwidth, divisor):
    options = {"per_bitwidth": True} if per_bitwidth else {}
    model = small_net(
        "maml_convnet",
        ways=5,
        weight_options=options,
        activation_options={**options, "levels": "exact"} if per_bitwidth else None,
    )
    grads = _random_grads(model, len(TASKS), seed=3)
    got = aggregate_meta_gradients(grads, parameter_kinds(model), task_usage(model, TASKS), divisor=divisor)
    expected = _expected(model, grads, TASKS, divisor)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name].numpy(), expected[name], rtol=1e-12, atol=1e-12, err_msg=name)
    # the clamp bit: 60+20-90+50 = 40 over 4 tasks is 10 -> 10; a single 60 -> 10 for a one-user step
    assert any((got[name].abs() == 10).any() for name in got)
    assert all(got[name].abs().max() <= 10 for name in got)


def test_steps_average_over_their_users_only_while_ordinary_parameters_use_the_batch_size():
    model = small_net("maml_convnet", ways=5)
    kinds = parameter_kinds(model)
    grads = {name: torch.ones(4, *p.shape, dtype=torch.float64) for name, p in model.named_parameters()}
    got = aggregate_meta_gradients(grads, kinds, task_usage(model, TASKS), clamp=None)
    for name in kinds:  # all ones: every mean is 1, whatever its divisor
        assert torch.equal(got[name], torch.ones_like(got[name])), name
    for g in grads.values():
        g[2] = 0  # the (FP,FP) task contributes nothing: ordinary means drop to 3/4, step means stay 1
    got = aggregate_meta_gradients(grads, kinds, task_usage(model, TASKS), clamp=None)
    for name, kind in kinds.items():
        expected = 1.0 if kind in ("weight_step", "activation_step") else 0.75
        assert torch.allclose(got[name], torch.full_like(got[name], expected)), (name, kind)


def test_elements_no_task_uses_get_zero():
    model = small_net("maml_convnet", ways=5)
    tasks = [T(None, None), T(4, None)]  # no task quantizes activations
    grads = {name: torch.full((2, *p.shape), 3.0, dtype=torch.float64) for name, p in model.named_parameters()}
    got = aggregate_meta_gradients(grads, parameter_kinds(model), task_usage(model, tasks))
    for name, kind in parameter_kinds(model).items():
        assert got[name].abs().max() == (0 if kind == "activation_step" else 3), name


def test_aggregates_real_meta_gradients_to_finite_values_within_the_clamp():
    model = small_net("maml_convnet", ways=5)
    params, buffers = state(model)
    episodes = make_batch(4, ways=5, shots=1, queries=2, seed=8)
    result = fomaml_batched(model, params, buffers, episodes, TASKS, InnerLoop(0.1, 1, adapt_set(model)))
    outer = aggregate_meta_gradients(result.grads, parameter_kinds(model), task_usage(model, TASKS))
    assert all(outer[n].shape == p.shape and torch.isfinite(outer[n]).all() for n, p in params.items())


def test_bad_input():
    model = small_net("maml_convnet", ways=5)
    kinds = parameter_kinds(model)
    grads = _random_grads(model, 4, seed=1)
    with pytest.raises(ValueError, match="divisor must be one of"):
        aggregate_meta_gradients(grads, kinds, task_usage(model, TASKS), divisor="usage")
    with pytest.raises(ValueError, match="needs usage"):
        aggregate_meta_gradients(grads, kinds)
    uneven = {**grads, "classifier.bias": grads["classifier.bias"][:3]}
    with pytest.raises(ValueError, match="same leading task dimension"):
        aggregate_meta_gradients(uneven, kinds, task_usage(model, TASKS))
    with pytest.raises(ValueError, match="usage of"):
        aggregate_meta_gradients(grads, kinds, task_usage(model, TASKS[:2] * 3))
    with pytest.raises(ValueError, match="clamp must be"):
        aggregate_meta_gradients(grads, kinds, task_usage(model, TASKS), clamp=-1.0)
