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


@pytest.mark.parametrize(
    "spec, reference",
    [
        ({"name": "adam", "lr": 0.01}, lambda p: torch.optim.Adam(p, lr=0.01)),
        ({"name": "adam", "lr": 0.01, "weight_decay": 0.1}, lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
        ({"name": "adamw", "lr": 0.05}, lambda p: torch.optim.AdamW(p, lr=0.05)),
        (
            {"name": "adamw", "lr": 0.05, "weight_decay": 0.3, "betas": [0.8, 0.99]},
            lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.3, betas=(0.8, 0.99)),
        ),
        ({"name": "sgd", "lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1)),
        (
            {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
        ),
    ],
)
def test_optimizers_follow_torch_optim_exactly(spec, reference):
    ours = trajectory(lambda p: build_optimizer(p, spec))
    theirs = trajectory(lambda p: reference(p))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "spec, reference",
    [
        ({"name": "cosine", "t_max": 7}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7)),
        (
            {"name": "multistep", "milestones": [2, 5], "gamma": 0.1},
            lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5], gamma=0.1),
        ),
        ({"name": "step", "step_size": 3, "gamma": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        ({"name": "constant"}, lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0)),
    ],
)
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


def resolved_schedule(setup: str, scale: str, method: str = "mebqat", **train) -> tuple[int, dict]:
    from mebqat.core.config import resolve_job

    config = resolve_job({"setup": setup, "method": method, "scale": scale, "overrides": {"train": train}})
    return config["train"]["epochs"], config["train"]["schedule"]


def test_the_schedule_follows_an_epochs_override():
    """Milestones and cosine periods are written for the preset's budget: --set train.epochs=12 on a 4-epoch
    preset with milestones [3] drops the rate at epoch 10 of 12 (as at epoch 4 of 4), not at epoch 4."""
    assert resolved_schedule("svhn_cnn8", "mini") == (4, {"name": "multistep", "milestones": [3], "gamma": 0.1})
    assert resolved_schedule("svhn_cnn8", "mini", epochs=12)[1]["milestones"] == [9]
    assert resolved_schedule("svhn_cnn8", "paper", epochs=10)[1]["milestones"] == [5, 8, 9]
    assert resolved_schedule("cifar10_mobilenetv2", "mini", epochs=9)[1] == {"name": "cosine", "t_max": 9}
    # a period is not a budget: StepLR's step_size stays
    assert resolved_schedule("pn_omniglot_20w1s", "paper", "pn", epochs=20)[1]["step_size"] == 40
    # a schedule the user gives is kept as given
    assert resolved_schedule("svhn_cnn8", "mini", epochs=12, schedule={"milestones": [2, 6]})[1]["milestones"] == [2, 6]


def test_a_schedule_that_cannot_act_within_the_epochs_is_refused():
    from mebqat.core.config import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"train.schedule.milestones \[2, 30\]: \[30\] would drop the rate only "
        r"after the last of train.epochs 4",
    ):
        resolved_schedule("svhn_cnn8", "mini", schedule={"milestones": [2, 30]})


def test_the_job_log_says_when_the_rate_changes():
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = build_optimizer(params, {"name": "adam", "lr": 0.001})
    described = build_scheduler(optimizer, {"name": "multistep", "milestones": [9], "gamma": 0.1}).describe(12)
    assert described == "lr 0.001, multistep: ×0.1 from epoch 10 of 12"
    lrs = []
    scheduler = build_scheduler(optimizer, {"name": "multistep", "milestones": [9], "gamma": 0.1})
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    assert lrs.index(min(lrs)) == 9  # the 10th epoch (1-based) is the first at the lower rate, as described
