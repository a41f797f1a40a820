"""How a bitwidth is written, in Python: ``None`` is full precision (FP), an int 1–31 a quantized
bitwidth, and ``32`` is accepted as FP (the few-shot code's spelling). Tensors of bitwidths (codes with
FP = :data:`FP_CODE`) are :mod:`mebqat.quant.bits`'s business; this module validates the Python form, once,
for everyone."""

from __future__ import annotations

FP_CODE = 32
"""Tensor encoding of full precision (and the Python alias accepted for ``None``)."""


def check_bits(bits: object, what: str, min_bits: int = 1) -> int | None:
    """Validate a Python bitwidth; return ``None`` for FP, else the int. ``what`` names the caller in errors."""
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"{what}: a bitwidth must be None, an int or an integer tensor, got {bits!r}")
    if bits >= FP_CODE:
        if bits != FP_CODE:
            raise ValueError(f"{what}: bitwidth {bits} is not supported (use None or {FP_CODE} for FP)")
        return None
    if bits < min_bits:
        raise ValueError(
            f"{what}: bitwidth {bits} is not supported; this quantizer needs at least "
            f"{min_bits} bits (or None for full precision)"
        )
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
        return check_bits(text, "bitwidth")
    value = str(text).strip()
    if value.upper() in {"FP", "NONE", "FULL", "32"}:
        return None
    try:
        return check_bits(int(value), "bitwidth")
    except ValueError as err:
        raise ValueError(f"cannot read bitwidth {text!r}: {err}") from None
