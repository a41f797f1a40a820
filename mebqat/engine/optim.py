"""Optimizers and per-epoch learning-rate schedules named by the config (official §4.1, §7)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Adam (no weight decay by default) | AdamW (PyTorch's default weight decay 0.01) | SGD."""
    name, lr = spec["name"], float(spec["lr"])
    kwargs: dict[str, Any] = {}
    if "weight_decay" in spec:
        kwargs["weight_decay"] = float(spec["weight_decay"])
    if "betas" in spec and name in ("adam", "adamw"):
        kwargs["betas"] = tuple(spec["betas"])
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, **kwargs)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, **kwargs)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(spec.get("momentum", 0.0)), **kwargs)
    raise ValueError(f"unknown optimizer {name!r} (adam | adamw | sgd)")


def build_scheduler(optimizer: torch.optim.Optimizer, spec: Mapping[str, Any]) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch, like the authors' code."""
    name = spec["name"]
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(spec["t_max"]))
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(spec["milestones"]),
                                                    gamma=float(spec["gamma"]))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(spec["step_size"]), gamma=float(spec["gamma"]))
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    raise ValueError(f"unknown schedule {name!r} (cosine | multistep | step | constant)")


def clamp_gradients_(params: Iterable[torch.nn.Parameter], limit: float | None) -> None:
    """Elementwise clamp of every gradient to [−limit, limit] (official §4: ±10 in every scheme)."""
    if limit is None:
        return
    for p in params:
        if p.grad is not None:
            p.grad.clamp_(-limit, limit)
