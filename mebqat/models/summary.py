"""Parameter accounting and the quantizer inventory of a model (``mebqat describe``; Table 3 inputs).

Counts follow the specification: weights, biases and BatchNorm affine parameters; quantizer parameters
(SAT α, LSQ steps) are reported separately; BatchNorm running statistics are buffers and counted apart.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .layers import NORM_TYPES, ActQuant, FullPrecision, QConv2d, QLinear, quantizer_modules


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``params`` (weights + biases + BN affine), ``bn_params``, ``quantizer_params``, ``bn_running_stats``."""
    quantizers = {id(q) for _, q, _ in quantizer_modules(model)}
    counts = {"params": 0, "bn_params": 0, "quantizer_params": 0, "bn_running_stats": 0}
    seen: set[int] = set()
    for module in model.modules():
        if id(module) in quantizers:
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    counts["quantizer_params"] += p.numel()
            continue
        for p in module.parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            counts["params"] += p.numel()
            if isinstance(module, NORM_TYPES):
                counts["bn_params"] += p.numel()
        if isinstance(module, NORM_TYPES):
            for name in ("running_mean", "running_var"):
                buffer = getattr(module, name, None)
                if isinstance(buffer, torch.Tensor):
                    counts["bn_running_stats"] += buffer.numel()
    return counts


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Counts, BN share, precision rules, and every quantized weight and activation with its role."""
    counts = parameter_counts(model)
    weights, activations = [], []
    for name, module in model.named_modules():
        if isinstance(module, (QConv2d, QLinear)):
            weights.append(
                {
                    "name": f"{name}.weight",
                    "shape": list(module.weight.shape),
                    "role": module.role,
                    "kind": "conv" if isinstance(module, QConv2d) else "linear",
                    "always_fp": isinstance(module.weight_quantizer, FullPrecision),
                }
            )
        elif isinstance(module, ActQuant):
            activations.append(
                {"name": name, "role": module.role, "always_fp": isinstance(module.quantizer, FullPrecision)}
            )
    rules = getattr(model, "rules", None)
    return {
        **counts,
        "bn_share": counts["bn_params"] / counts["params"] if counts["params"] else 0.0,
        "scheme": getattr(model, "scheme", None),
        "rules": rules.describe() if rules is not None else {},
        "weight_quantizers": weights,
        "activation_quantizers": activations,
    }
