"""How a bitwidth is written.

A bitwidth is data, not structure. It may be

* ``None``: full precision (FP);
* a Python ``int`` from 1 to 31 (``32`` is accepted as FP, the few-shot code's spelling);
* an integer tensor, where FP is encoded as :data:`FP_CODE` (32). Tensors let one set of parameters be
  evaluated under a whole batch of bitwidths in one vectorised pass (``torch.func.vmap``).

Python bitwidths are validated eagerly. Tensor bitwidths cannot be inspected inside ``vmap`` without a
device synchronisation, so the quantizers turn an unsupported tensor bitwidth into NaN outputs instead
(a loud failure that the engines' divergence checks catch); tasks are validated where they are made
(:mod:`mebqat.quant.tasks`).
"""

from __future__ import annotations

import torch

FP_CODE = 32
"""Tensor encoding of full precision (and the Python alias accepted for ``None``)."""

Bits = int | None | torch.Tensor


def is_tensor_bits(bits: Bits) -> bool:
    return isinstance(bits, torch.Tensor)


def check_python_bits(bits: int | None, scheme: str, min_bits: int = 1) -> int | None:
    """Validate a Python bitwidth; return ``None`` for FP, else the int."""
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"{scheme}: a bitwidth must be None, an int or an integer tensor, got {bits!r}")
    if bits >= FP_CODE:
        if bits != FP_CODE:
            raise ValueError(f"{scheme}: bitwidth {bits} is not supported (use None or {FP_CODE} for FP)")
        return None
    if bits < min_bits:
        raise ValueError(f"{scheme}: bitwidth {bits} is not supported; this quantizer needs at least "
                         f"{min_bits} bits (or None for full precision)")
    return bits


def to_code(bits: int | None) -> int:
    """Python bitwidth -> tensor code (FP -> 32)."""
    return FP_CODE if bits is None or bits >= FP_CODE else int(bits)


def from_code(code: int) -> int | None:
    """Tensor code -> Python bitwidth (32 -> None)."""
    code = int(code)
    return None if code >= FP_CODE else code


def format_bits(bits: int | None) -> str:
    return "FP" if bits is None or bits >= FP_CODE else str(int(bits))


def parse_bits(text: str | int | None) -> int | None:
    """Parse ``"FP"``, ``"32"``, ``"4"``, ``4`` or ``None`` into a Python bitwidth."""
    if text is None:
        return None
    if isinstance(text, int):
        return check_python_bits(text, "bitwidth")
    value = str(text).strip()
    if value.upper() in {"FP", "NONE", "FULL", "32"}:
        return None
    try:
        return check_python_bits(int(value), "bitwidth")
    except ValueError as err:
        raise ValueError(f"cannot read bitwidth {text!r}: {err}") from None


def tensor_flags(bits: torch.Tensor, min_bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For a tensor bitwidth: (is FP, is unsupported, a safe bitwidth to evaluate the quantized branch with).

    The safe bitwidth replaces FP and unsupported entries by ``min_bits`` so that the branch that
    `torch.where` discards never produces inf/NaN (which would poison its gradient).
    """
    fp = bits >= FP_CODE
    invalid = (bits < min_bits) & ~fp
    safe = torch.where(fp | invalid, torch.full_like(bits, min_bits), bits)
    return fp, invalid, safe


def exp2(bits: int | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """2**bits as a Python float, or as a tensor of ``like``'s dtype."""
    if isinstance(bits, torch.Tensor):
        return torch.exp2(bits.to(like.dtype))
    return float(2**bits)
