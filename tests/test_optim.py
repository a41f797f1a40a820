"""The engine's optimizers and schedules (mebqat/engine/optim.py, written to keep torch._dynamo out of every
job) against torch.optim: the same trajectories, step by step, and the same learning rates per epoch."""

from __future__ import annotations

import pytest
import torch

from mebqat.engine.optim import build_optimizer, build_scheduler


def trajectory(make, steps: int = 6) -> list[torch.Tensor]:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3, dtype=torch.float64)), torch.nn.Parameter(torch.randn(4))]
    optimizer = make(params)
    generator = torch.Generator().manual_seed(1)
    seen = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        for i, p in enumerate(params):
            if step % 3 == 2 and i == 1:
                continue  # a step without a gradient for this parameter: it must not move
            p.grad = torch.randn(p.shape, generator=generator, dtype=p.dtype)
        optimizer.step()
        seen += [p.detach().clone() for p in params]
    return seen


@pytest.mark.parametrize("spec, reference", [
    ({"name": "adam", "lr": 0.01}, lambda p: torch.optim.Adam(p, lr=0.01)),
    ({"name": "adam", "lr": 0.01, "weight_decay": 0.1}, lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    ({"name": "adamw", "lr": 0.05}, lambda p: torch.optim.AdamW(p, lr=0.05)),
    ({"name": "adamw", "lr": 0.05, "weight_decay": 0.3, "betas": [0.8, 0.99]},
     lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.3, betas=(0.8, 0.99))),
    ({"name": "sgd", "lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1)),
    ({"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
])
def test_optimizers_follow_torch_optim_exactly(spec, reference):
    ours = trajectory(lambda p: build_optimizer(p, spec))
    theirs = trajectory(lambda p: reference(p))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("spec, reference", [
    ({"name": "cosine", "t_max": 7}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7)),
    ({"name": "multistep", "milestones": [2, 5], "gamma": 0.1},
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5], gamma=0.1)),
    ({"name": "step", "step_size": 3, "gamma": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
    ({"name": "constant"}, lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0)),
])
def test_schedules_give_torchs_learning_rates(spec, reference):
    param = torch.nn.Parameter(torch.zeros(1))
    ours = build_scheduler(build_optimizer([param], {"name": "adam", "lr": 0.05}), spec)
    torch_optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.05)
    theirs = reference(torch_optimizer)
    for _ in range(9):
        assert ours.optimizer.lr == pytest.approx(torch_optimizer.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        torch_optimizer.step()
        ours.step()
        theirs.step()


def test_state_round_trips_and_resumes_identically():
    spec = {"name": "adamw", "lr": 0.05}
    straight = trajectory(lambda p: build_optimizer(p, spec), steps=6)
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3, dtype=torch.float64)), torch.nn.Parameter(torch.randn(4))]
    first = build_optimizer(params, spec)
    generator = torch.Generator().manual_seed(1)

    def step(optimizer, index):
        for i, p in enumerate(params):
            p.grad = None if (index % 3 == 2 and i == 1) else torch.randn(p.shape, generator=generator, dtype=p.dtype)
        optimizer.step()

    for index in range(3):
        step(first, index)
    second = build_optimizer(params, spec)
    second.load_state_dict(first.state_dict())
    for index in range(3, 6):
        step(second, index)
    torch.testing.assert_close(params[0].detach(), straight[-2], rtol=0, atol=0)


def test_a_foreign_state_and_a_bad_spec_are_refused():
    param = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="not a adam state"):
        build_optimizer([param], {"name": "adam", "lr": 0.1}).load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        build_optimizer([param], {"name": "rmsprop", "lr": 0.1})
    with pytest.raises(ValueError, match="unknown schedule 'warmup'"):
        build_scheduler(build_optimizer([param], {"name": "adam", "lr": 0.1}), {"name": "warmup"})
