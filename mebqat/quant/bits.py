"""Bitwidths as quantizers take them: ``None`` (FP), a Python int, or an integer tensor of codes (FP =
:data:`FP_CODE`), so that one set of parameters can be evaluated under a whole batch of bitwidths in one
vectorised pass (``torch.func.vmap``).

:func:`quantize_by_bits` is the one place a quantizer's bitwidth is checked: a Python bitwidth eagerly
(:func:`mebqat.core.bits.check_bits`), a tensor one elementwise — inside ``vmap`` a tensor cannot be
inspected without a device synchronisation, so an unsupported tensor bitwidth gives NaN outputs (a loud
failure that the engines' divergence checks catch); tasks are validated where they are made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from ..core.bits import FP_CODE, check_bits, format_bits, from_code, parse_bits, to_code
from ..core.tasks import BitwidthTask

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13

Bits = int | None | torch.Tensor
QuantizedBranch = Callable[[int | torch.Tensor], torch.Tensor]


def is_tensor_bits(bits: Bits) -> TypeIs[torch.Tensor]:
    """Whether ``bits`` is a tensor of bitwidth codes (else a Python bitwidth: an int, or None for FP)."""
    return isinstance(bits, torch.Tensor)


def tensor_flags(bits: torch.Tensor, min_bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For a tensor bitwidth: (is FP, is unsupported, a safe bitwidth to evaluate the quantized branch with).

    The safe bitwidth replaces FP and unsupported entries by ``min_bits`` so that the branch that
    ``torch.where`` discards never produces inf/NaN (which would poison its gradient).
    """
    fp = bits >= FP_CODE
    invalid = (bits < min_bits) & ~fp
    safe = torch.where(fp | invalid, torch.full_like(bits, min_bits), bits)
    return fp, invalid, safe


def python_bits(bits: Bits, what: str, min_bits: int) -> Bits:
    """A Python bitwidth checked (None for FP); a tensor is returned as it is."""
    return bits if is_tensor_bits(bits) else check_bits(bits, what, min_bits)


def is_full_precision(bits: Bits, what: str, min_bits: int) -> bool:
    """True only for a Python FP bitwidth (a tensor may hold FP and quantized entries alike)."""
    return not is_tensor_bits(bits) and check_bits(bits, what, min_bits) is None


def quantize_by_bits(x: torch.Tensor, bits: Bits, what: str, min_bits: int, quantized: QuantizedBranch) -> torch.Tensor:
    """``x`` at full precision, else ``quantized(b)``: a checked Python int, or for tensor bitwidths a safe
    tensor bitwidth, with FP entries passed through and unsupported ones turned into NaN."""
    if not is_tensor_bits(bits):
        b = check_bits(bits, what, min_bits)
        return x if b is None else quantized(b)
    fp, invalid, safe = tensor_flags(bits, min_bits)
    out = quantized(safe)
    out = torch.where(invalid, torch.full_like(out, float("nan")), out)
    return torch.where(fp, x, out)


def exp2(bits: int | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """2**bits as a Python float, or as a tensor of ``like``'s dtype."""
    if isinstance(bits, torch.Tensor):
        return torch.exp2(bits.to(like.dtype))
    return float(2**bits)


def task_tensor(tasks: Sequence[BitwidthTask] | BitwidthTask, device: torch.device | str | None = None) -> torch.Tensor:
    """Tasks as an integer tensor of codes, shape [T, 2] (or [2] for one task); FP is 32."""
    if isinstance(tasks, BitwidthTask):
        return torch.tensor(tasks.code(), dtype=torch.long, device=device)
    return torch.tensor([BitwidthTask.parse(t).code() for t in tasks], dtype=torch.long, device=device)


def tasks_from_tensor(codes: torch.Tensor) -> list[BitwidthTask]:
    return [BitwidthTask(from_code(w), from_code(a)) for w, a in codes.reshape(-1, 2).tolist()]


__all__ = [
    "Bits",
    "FP_CODE",
    "check_bits",
    "exp2",
    "format_bits",
    "from_code",
    "is_full_precision",
    "is_tensor_bits",
    "parse_bits",
    "python_bits",
    "quantize_by_bits",
    "task_tensor",
    "tasks_from_tensor",
    "tensor_flags",
    "to_code",
]
