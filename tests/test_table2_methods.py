"""The Table 2 methods' update rules, checked on synthetic batches against independent computations:
MEBQAT's per-parameter average of per-task gradients with the ±clamp, guaranteed tasks, the batched and
sequential engines, AdaBits/ApDNN summed gradients and switchable running statistics, dedicated QAT."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F

from mebqat.core.config import resolve_job
from mebqat.core.counters import PassCounter
from mebqat.methods import create_method
from mebqat.quant import BitwidthTask as T

TEN_CLASSES = SimpleNamespace(num_classes=10)


def make(setup: str, method: str, engine: str = "batched", **overrides):
    spec = {
        "setup": setup,
        "method": method,
        "scale": "smoke",
        "overrides": {"train": {"engine": engine, **overrides.pop("train", {})}, **overrides},
    }
    if method == "qat":
        spec["train_task"] = "(2,2)" if setup == "cifar10_mobilenetv2" else "(4,4)"
    config = resolve_job(spec)
    return create_method(config), config


def batch(shape=(3, 32, 32), n=12, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=gen, dtype=dtype), torch.randint(0, 10, (n,), generator=gen)


def grads_of(model):
    return {n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()}


def fresh_model(method, seed=0):
    torch.manual_seed(seed)
    return method.build_model(TEN_CLASSES).double()


def reference_mebqat_gradient(model, x, y, tasks, clamp):
    """Independent: per-task gradients of CE (+ soft CE vs the FP model for quantized tasks), each
    parameter averaged over the tasks that use it (SAT α: tasks with quantized activations), clamped."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        teacher = F.softmax(model(x, T(None, None)), dim=-1)
    per_task = []
    for task in tasks:
        logits = model(x, task)
        loss = F.cross_entropy(logits, y)
        if not task.is_full_precision:
            loss = loss - (teacher * F.log_softmax(logits, -1)).sum(-1).mean()
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        per_task.append({n: g for n, g in zip(params, grads, strict=True)})
    expected = {}
    for name, p in params.items():
        users = [i for i, t in enumerate(tasks) if not name.endswith("alpha.values") or t.a is not None]
        if not users:
            expected[name] = None
            continue
        total = sum(per_task[i][name] if per_task[i][name] is not None else torch.zeros_like(p) for i in users)
        expected[name] = (total / len(users)).clamp(-clamp, clamp)
    return expected


@pytest.mark.parametrize("engine", ["sequential", "batched"])
def test_mebqat_gradient_is_clamped_per_parameter_mean_of_task_gradients(engine):
    method, _ = make(
        "cifar10_mobilenetv2", "mebqat", engine, train={"grad_clamp": 0.05}, model={"options": {"dropout": 0.0}}
    )
    model = fresh_model(method)
    model.train()
    x, y = batch()
    state = method.sampler.state_dict()
    tasks = method.sampler.sample()
    method.sampler.load_state_dict(state)
    expected = reference_mebqat_gradient(model, x, y, tasks, clamp=0.05)
    model.zero_grad(set_to_none=True)
    method.update(model, (x, y), PassCounter())
    got = grads_of(model)
    clamped = 0
    for name, value in expected.items():
        if value is None:
            assert got[name] is None, name
        else:
            torch.testing.assert_close(got[name], value, rtol=1e-7, atol=1e-10, msg=name)
            clamped += int((value.abs() == 0.05).sum())
    assert clamped > 0  # the clamp really bit


def test_mebqat_alpha_averages_only_over_tasks_that_quantize_it():
    method, _ = make("cifar10_mobilenetv2", "mebqat", "sequential", model={"options": {"dropout": 0.0}})
    model = fresh_model(method)
    x, y = batch()
    tasks = [T(None, None), T(4, None), T(2, 3), T(8, None)]  # only (2,3) quantizes activations
    method.sampler.sample = lambda: tasks
    method.update(model, (x, y), PassCounter())
    with_alpha = grads_of(model)["stem.3.quantizer.alpha.values"]
    model.zero_grad(set_to_none=True)
    method.sampler.sample = lambda: [T(2, 3)]
    method.update(model, (x, y), PassCounter())
    alone = grads_of(model)["stem.3.quantizer.alpha.values"]
    # divided by 1 (the one task that used it), not by 4
    torch.testing.assert_close(with_alpha, alone.clamp(-10, 10))
    model.zero_grad(set_to_none=True)
    method.sampler.sample = lambda: [T(None, None), T(4, None)]
    method.update(model, (x, y), PassCounter())
    assert grads_of(model)["stem.3.quantizer.alpha.values"] is None  # no task used it: no update at all


@pytest.mark.parametrize(
    "setup, guaranteed",
    [("cifar10_mobilenetv2", [T(None, None)]), ("cifar10_preact_resnet20", [T(None, None), T(1, 1)])],
)
def test_mebqat_guaranteed_tasks_every_step(setup, guaranteed):
    method, _ = make(setup, "mebqat")
    for _ in range(50):
        tasks = method.sampler.sample()
        assert tasks[: len(guaranteed)] == guaranteed and len(tasks) == 4


@pytest.mark.parametrize(
    "setup, teacher", [("cifar10_mobilenetv2", True), ("cifar10_preact_resnet20", True), ("svhn_cnn8", False)]
)
def test_mebqat_batched_and_sequential_engines_agree(setup, teacher):
    shape = (3, 40, 40) if setup == "svhn_cnn8" else (3, 32, 32)
    results = {}
    for engine in ("sequential", "batched"):
        no_dropout = {} if setup == "cifar10_preact_resnet20" else {"model": {"options": {"dropout": 0.0}}}
        method, _ = make(setup, "mebqat", engine, **no_dropout)
        method.per_task_teacher = teacher
        model = fresh_model(method)
        x, y = batch(shape)
        counter = PassCounter()
        stats = method.update(model, (x, y), counter)
        results[engine] = (stats, grads_of(model), counter)
    (s_stats, s_grads, s_count), (b_stats, b_grads, b_count) = results["sequential"], results["batched"]
    assert s_stats.keys() == b_stats.keys()
    for key in s_stats:
        assert float(s_stats[key]) == pytest.approx(float(b_stats[key]), rel=1e-9)
    for name in s_grads:
        if s_grads[name] is None:
            assert b_grads[name] is None
        else:
            torch.testing.assert_close(b_grads[name], s_grads[name], rtol=1e-7, atol=1e-11, msg=name)
    # the official per-task teacher costs 1 + 2·(quantized tasks) forwards; one shared teacher costs T
    assert s_count.backward_passes == b_count.backward_passes == 4
    assert s_count.forward_passes == b_count.forward_passes == (7 if teacher else 4)


def test_the_engine_is_decided_once_when_the_method_is_built():
    """``train.engine: auto`` resolves per device type when the method is built (the registry's default:
    sequential on a CPU, batched on CUDA), an explicit engine overrides the configuration, and nothing can
    switch a built method's engine."""
    config = resolve_job(
        {"setup": "svhn_cnn8", "method": "mebqat", "scale": "smoke", "overrides": {"train": {"engine": "auto"}}}
    )
    assert create_method(config, "cpu").engine == "sequential"
    assert create_method(config, torch.device("cuda", 0)).engine == "batched"  # a device object; no GPU needed
    assert create_method(config, "cpu", engine="batched").batched
    assert not create_method({**config, "train": {**config["train"], "engine": "sequential"}}, "cuda").batched
    with pytest.raises(ValueError, match="auto, which depends on the device"):
        create_method(config)
    with pytest.raises(ValueError, match="must be one of batched, sequential, auto"):
        create_method(config, "cpu", engine="vectorised")
    method = create_method(config, "cpu")
    with pytest.raises(AttributeError):
        method.batched = True


def test_mebqat_batched_engine_in_float32_is_close():
    """float32: identical up to rounding-boundary flips of quantized values; the loss agrees closely."""
    losses = {}
    for engine in ("sequential", "batched"):
        method, _ = make("cifar10_preact_resnet20", "mebqat", engine)
        torch.manual_seed(0)
        model = method.build_model(TEN_CLASSES)
        x, y = batch(dtype=torch.float32)
        losses[engine] = float(method.update(model, (x, y), PassCounter())["loss"])
    assert losses["batched"] == pytest.approx(losses["sequential"], rel=1e-4)


@pytest.mark.parametrize(
    "setup, method_name", [("cifar10_mobilenetv2", "adabits"), ("cifar10_preact_resnet20", "apdnn")]
)
def test_joint_methods_batched_equals_sequential_including_running_stats(setup, method_name):
    outcome = {}
    for engine in ("sequential", "batched"):
        method, _ = make(
            setup, method_name, engine, model={"options": {"dropout": 0.0}} if method_name == "adabits" else {}
        )
        model = fresh_model(method)
        model.train()
        x, y = batch()
        counter = PassCounter()
        stats = method.update(model, (x, y), counter)
        outcome[engine] = (stats, grads_of(model), {k: v.clone() for k, v in model.named_buffers()}, counter)
    seq, bat = outcome["sequential"], outcome["batched"]
    assert float(seq[0]["loss"]) == pytest.approx(float(bat[0]["loss"]), rel=1e-9)
    for name, g in seq[1].items():
        torch.testing.assert_close(bat[1][name], g, rtol=1e-7, atol=1e-11, msg=name)
    for name, buffer in seq[2].items():
        torch.testing.assert_close(bat[2][name], buffer, rtol=1e-9, atol=1e-12, msg=name)
    n_bits = len(method.trained_tasks())
    assert seq[3].backward_passes == bat[3].backward_passes == n_bits  # N backprops per update
    running = [b for k, b in seq[2].items() if k.endswith("running_mean")]
    assert running and all((r != 0).any() for r in running)


def test_adabits_gradients_are_summed_over_bitwidths():
    method, _ = make(
        "cifar10_mobilenetv2", "adabits", "sequential", train={"grad_clamp": None}, model={"options": {"dropout": 0.0}}
    )
    model = fresh_model(method)
    x, y = batch()
    method.update(model, (x, y), PassCounter())
    joint = grads_of(model)["classifier.weight"]
    total = torch.zeros_like(joint)
    for task in method.trained_tasks():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, task), y).backward()
        total += model.classifier.weight.grad
    torch.testing.assert_close(joint, total)


def test_apdnn_distils_recursively_from_the_next_higher_bitwidth():
    method, _ = make("cifar10_preact_resnet20", "apdnn", "sequential")
    assert method.training_order() == [T(None, None), T(8, 8), T(4, 4), T(2, 2), T(1, 1)]
    logits_hi, logits_lo = torch.randn(5, 10), torch.randn(5, 10)
    y = torch.randint(0, 10, (5,))
    assert method.task_loss(0, logits_hi, y, None) == F.cross_entropy(logits_hi, y)
    soft = method.task_loss(1, logits_lo, y, logits_hi)
    assert soft == pytest.approx(float(-(F.softmax(logits_hi, -1) * F.log_softmax(logits_lo, -1)).sum(-1).mean()))


def test_apdnn_refuses_an_untrained_bitwidth_with_a_clear_error():
    method, _ = make("cifar10_preact_resnet20", "apdnn")
    requested = [T(2, 2), T(3, 3), T(None, None)]
    assert method.evaluation_tasks(requested, strict=False) == [T(2, 2), T(None, None)]
    with pytest.raises(
        ValueError,
        match=r"apdnn cannot be evaluated at \(3,3\): it was trained at "
        r"\(1,1\), \(2,2\), \(4,4\), \(8,8\), \(FP,FP\) only",
    ):
        method.evaluation_tasks(requested, strict=True)
    model = method.build_model(TEN_CLASSES).eval()
    with pytest.raises(ValueError, match="no BatchNorm for 3-bit tasks"):
        model(torch.rand(2, 3, 32, 32), (3, 3))


def test_dedicated_qat_trains_its_task_with_running_statistics():
    method, _ = make("svhn_cnn8", "qat")
    assert method.trained_tasks() == [T(4, 4)]
    model = method.build_model(TEN_CLASSES)
    x, y = batch((3, 40, 40), dtype=torch.float32)
    counter = PassCounter()
    method.update(model, (x, y), counter)
    assert counter.forward_passes == counter.backward_passes == 1
    assert any(name.endswith("running_mean") and (b != 0).any() for name, b in model.named_buffers())
