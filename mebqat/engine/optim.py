"""Optimizers and per-epoch learning-rate schedules named by the config (official §4.1, §7).

Written here rather than taken from ``torch.optim`` for one measured reason: every ``torch.optim`` optimizer
imports ``torch._dynamo`` on its first use (its methods are wrapped to disable compilation, and ``step``
inserts graph breaks), which costs about 1.6 CPU seconds per process — a third of a workflow job's fixed
cost (benchmarks/job_overhead.py). The update rules are PyTorch's documented ones (Adam, AdamW with
decoupled weight decay, SGD with momentum), computed in the same order as PyTorch's single-tensor path, so
on the CPU the trajectories are identical (tests/test_optim.py compares them step by step).

The schedules are stepped once per epoch, like the authors' code, and set each group's learning rate from
the epoch count in closed form.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

FORMAT = 1


class Optimizer:
    """One parameter group: ``zero_grad``, ``step``, ``state_dict``/``load_state_dict``, ``param_groups``."""

    kind = "optimizer"

    def __init__(self, params: Iterable[torch.nn.Parameter], **hyper: Any) -> None:
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("the optimizer was given no parameters")
        self.param_groups = [{"params": self.params, **hyper}]
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is not None:
                self.update(p, p.grad, state, group)

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        hyper = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {
            "format": FORMAT,
            "kind": self.kind,
            "hyper": hyper,
            "state": [{k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("format") != FORMAT or state.get("kind") != self.kind or len(state["state"]) != len(self.params):
            raise ValueError(
                f"the checkpoint's optimizer state is not a {self.kind} state for these "
                f"{len(self.params)} parameters (written by another version of mebqat?)"
            )
        self.param_groups[0].update(state["hyper"])
        self.state = [
            {k: (v.to(p.device) if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
            for p, s in zip(self.params, state["state"], strict=True)
        ]


class Adam(Optimizer):
    """Adam (Kingma & Ba); ``weight_decay`` added to the gradient (L2), or decoupled (AdamW)."""

    kind = "adam"
    decoupled = False
    default_weight_decay = 0.0
    """PyTorch's default ``weight_decay`` of this kind, taken when none is given."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
    ) -> None:
        decay = self.default_weight_decay if weight_decay is None else weight_decay
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=decay)

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        state["step"] += 1
        if decay != 0:
            if self.decoupled:
                p.mul_(1 - lr * decay)
            else:
                grad = grad.add(p, alpha=decay)
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        correction1 = 1 - beta1 ** state["step"]
        correction2 = 1 - beta2 ** state["step"]
        denominator = (state["exp_avg_sq"].sqrt() / correction2**0.5).add_(eps)
        p.addcdiv_(state["exp_avg"], denominator, value=-(lr / correction1))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter); PyTorch's default decay 0.01."""

    kind = "adamw"
    decoupled = True
    default_weight_decay = 0.01


class SGD(Optimizer):
    """SGD with optional (heavy-ball) momentum and L2 weight decay."""

    kind = "sgd"

    def __init__(
        self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        if group["momentum"] != 0:
            if "momentum" not in state:
                state["momentum"] = grad.detach().clone()
            else:
                state["momentum"].mul_(group["momentum"]).add_(grad)
            grad = state["momentum"]
        p.add_(grad, alpha=-group["lr"])


OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD}


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: Mapping[str, Any]) -> Optimizer:
    """Adam (no weight decay by default) | AdamW (PyTorch's default weight decay 0.01) | SGD."""
    name = spec["name"]
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} ({' | '.join(OPTIMIZERS)})")
    kwargs: dict[str, Any] = {"lr": float(spec["lr"])}
    if "weight_decay" in spec:
        kwargs["weight_decay"] = float(spec["weight_decay"])
    if "betas" in spec and name in ("adam", "adamw"):
        kwargs["betas"] = tuple(float(b) for b in spec["betas"])
    if name == "sgd":
        kwargs["momentum"] = float(spec.get("momentum", 0.0))
    return OPTIMIZERS[name](params, **kwargs)


class Schedule:
    """A learning rate per epoch: ``factor(epoch)`` × the initial rate; :meth:`step` once per epoch."""

    def __init__(self, optimizer: Optimizer, spec: Mapping[str, Any]) -> None:
        self.optimizer, self.spec = optimizer, dict(spec)
        self.base_lr = optimizer.lr
        self.epoch = 0
        self.factor(0)  # refuses a bad spec before training

    def factor(self, epoch: int) -> float:
        name, spec = self.spec["name"], self.spec
        if name == "constant":
            return 1.0
        if name == "cosine":
            return (1 + math.cos(math.pi * epoch / int(spec["t_max"]))) / 2  # periodic past t_max, as torch
        if name == "multistep":
            return float(spec["gamma"]) ** sum(1 for m in spec["milestones"] if m <= epoch)
        if name == "step":
            return float(spec["gamma"]) ** (epoch // int(spec["step_size"]))
        raise ValueError(f"unknown schedule {name!r} (cosine | multistep | step | constant)")

    def describe(self, epochs: int) -> str:
        """The rate of every epoch of the run in words, e.g. ``lr 0.001, ×0.1 from epoch 10 of 12``."""
        changes, current = [], self.factor(0)
        for epoch in range(1, epochs):
            if (factor := self.factor(epoch)) != current:
                changes.append((epoch + 1, factor))  # factor(e) applies to the run's epoch e + 1 (1-based)
                current = factor
        name = self.spec["name"]
        if not changes:
            return f"lr {self.base_lr:g} throughout the {epochs} epochs ({name})"
        if name == "cosine":
            return f"lr {self.base_lr:g}, cosine over {self.spec['t_max']} epochs (the run has {epochs})"
        shown = ", ".join(f"×{f:g} from epoch {e}" for e, f in changes[:6]) + (" …" if len(changes) > 6 else "")
        return f"lr {self.base_lr:g}, {name}: {shown} of {epochs}"

    def step(self) -> None:
        self.epoch += 1
        self.optimizer.param_groups[0]["lr"] = self.base_lr * self.factor(self.epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "epoch": self.epoch, "base_lr": self.base_lr, "spec": self.spec}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("format") != FORMAT:
            raise ValueError("the checkpoint's schedule state was written by another version of mebqat")
        self.epoch, self.base_lr = int(state["epoch"]), float(state["base_lr"])
        self.optimizer.param_groups[0]["lr"] = self.base_lr * self.factor(self.epoch)


def build_scheduler(optimizer: Optimizer, spec: Mapping[str, Any]) -> Schedule:
    """Stepped once per epoch, like the authors' code."""
    return Schedule(optimizer, spec)
