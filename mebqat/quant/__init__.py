"""Quantizers with the bitwidth as data (official-mebqat.md §2), and bitwidth tasks (§4.1).

Stable surface, which the tests call (docs/quantizers.md, "Calling a quantizer")::

    quantize_weight(w, bits, scheme, **params)      # scheme: a registered family (dorefa | sat | lsq | ...)
    quantize_activation(x, bits, scheme, **params)
    bitwidth_candidates(family)                     # 75 / 73 / 73 valid (b_w, b_a) pairs

``bits`` is None (full precision), an int, or an integer tensor (FP = 32) so that a batch of bitwidths
can be evaluated in one ``torch.func.vmap`` pass. Every quantizer is a pure function whose forward is
the specified formula and whose gradient is the specified straight-through estimator. The families are
entries of :data:`mebqat.core.registry.QUANTIZERS` (metadata in :mod:`mebqat.core.catalog`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..core.tasks import BitwidthTask, TaskSampler, bitwidth_candidates, is_rejected, uniform_tasks, validate_task
from .bits import FP_CODE, Bits, format_bits, parse_bits, task_tensor, tasks_from_tensor
from .registry import QuantScheme, available_schemes, get_scheme


def quantize_weight(w: torch.Tensor, bits: Bits, scheme: str, **params: Any) -> torch.Tensor:
    """Quantize a weight tensor with the named scheme (``bits=None``: full precision)."""
    return get_scheme(scheme).quantize_weight(w, bits, **params)


def quantize_activation(x: torch.Tensor, bits: Bits, scheme: str, **params: Any) -> torch.Tensor:
    """Quantize an activation tensor with the named scheme (``bits=None``: full precision)."""
    return get_scheme(scheme).quantize_activation(x, bits, **params)


@torch.no_grad()
def calibrate_activation_steps(model: nn.Module, *forward_args: Any, only_missing: bool = True) -> int:
    """Set the LSQ activation steps of ``model`` from one forward pass (2·mean|x|/√p of each input).

    The authors' code boots each activation step from the first batch the network sees; this makes
    that step explicit. ``forward_args`` are passed to ``model`` (e.g. ``(x, task)`` with a Python
    task that quantizes the activations). Returns the number of quantizers calibrated.
    """
    from . import lsq

    targets = [
        m for m in model.modules() if isinstance(m, lsq.ActivationQuantizer) and (not only_missing or not m.calibrated)
    ]
    for module in targets:
        module.calibrating = True
    try:
        model(*forward_args)
    finally:
        for module in targets:
            module.calibrating = False
    return len(targets)


__all__ = [
    "BitwidthTask",
    "Bits",
    "FP_CODE",
    "QuantScheme",
    "TaskSampler",
    "available_schemes",
    "bitwidth_candidates",
    "calibrate_activation_steps",
    "format_bits",
    "get_scheme",
    "is_rejected",
    "parse_bits",
    "quantize_activation",
    "quantize_weight",
    "task_tensor",
    "tasks_from_tensor",
    "uniform_tasks",
    "validate_task",
]
