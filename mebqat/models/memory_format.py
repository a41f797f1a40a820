"""The memory layout a network trains and evaluates in (``train.memory_format``).

``channels_last`` (NHWC) is worth it on CPUs: PyTorch's NCHW max-pool and batch norm are slow at the narrow
widths of the mini scale, and the step benchmark (``benchmarks/step_paths.py``) measures a Table 2 or
few-shot step at 1.2–1.5× faster in NHWC. It changes the order of the convolutions' float sums, and dropout
draws its mask in memory order, so results agree with NCHW in distribution, not bitwise (at FP and without
dropout, to float rounding: tests/test_models.py). ``auto`` picks it for the sequential engines on a CPU and
keeps NCHW elsewhere (the batched engines run under ``vmap``, where the layout is not chosen per tensor).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import QConv2d

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def resolve_memory_format(requested: str, device: torch.device, engine: str) -> str:
    """``auto`` → ``channels_last`` for the sequential engine on a CPU, ``contiguous`` otherwise."""
    if requested not in MEMORY_FORMATS:
        raise ValueError(f"train.memory_format must be one of {list(MEMORY_FORMATS)}, got {requested!r}")
    if requested != "auto":
        return requested
    return "channels_last" if device.type == "cpu" and engine == "sequential" else "contiguous"


def use_memory_format(model: nn.Module, memory_format: str) -> nn.Module:
    """Put the model's 4-D parameters and buffers, and its convolutions' outputs, in ``memory_format``
    (``channels_last`` or ``contiguous``, resolved); returns the model (converted in place)."""
    if memory_format not in MEMORY_FORMATS[1:]:
        raise ValueError(f"memory format must be channels_last or contiguous, got {memory_format!r}")
    channels_last = memory_format == "channels_last"
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    for module in model.modules():
        if isinstance(module, QConv2d):
            module.channels_last = channels_last
    return model
