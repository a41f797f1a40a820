"""A learnable quantizer parameter that is either shared by every bitwidth or switched per bitwidth.

Used for LSQ steps (the authors share one step across bitwidths; a per-bitwidth grid is the corrected
behaviour) and SAT clipping levels (MEBQAT shares one α; AdaBits switches α per bitwidth, "S-CL").
The value is looked up from the bitwidth, so tensor bitwidths work inside ``vmap``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from .bits import FP_CODE, Bits, check_bits, format_bits, is_tensor_bits


class BitwidthTable(nn.Module):
    slot_of: torch.Tensor
    """Buffer: the slot of each bitwidth code (0 where it has none)."""
    has_slot: torch.Tensor
    """Buffer: whether each bitwidth code has a value."""

    def __init__(
        self, per_bitwidth: bool, bit_choices: Iterable[int | None], init: float, name: str, min_bits: int = 1
    ) -> None:
        super().__init__()
        quantized = tuple(b for b in bit_choices if b is not None)
        if per_bitwidth and (not quantized or min(quantized) < min_bits):
            raise ValueError(f"{name}: per-bitwidth bitwidths must be ≥ {min_bits}, got {list(quantized)}")
        self.name = name
        self.per_bitwidth = per_bitwidth
        self.slot_bits: tuple[int, ...] = quantized if per_bitwidth else ()
        self.values = nn.Parameter(torch.full((len(self.slot_bits) if per_bitwidth else 1,), float(init)))
        slot_of = torch.zeros(FP_CODE + 1, dtype=torch.long)
        has_slot = torch.zeros(FP_CODE + 1, dtype=torch.bool)
        if per_bitwidth:
            for slot, b in enumerate(self.slot_bits):
                slot_of[b], has_slot[b] = slot, True
        else:
            has_slot[min_bits:FP_CODE] = True
        self.register_buffer("slot_of", slot_of, persistent=False)
        self.register_buffer("has_slot", has_slot, persistent=False)

    def slot(self, bits: int) -> int:
        """The slot of a quantized Python bitwidth (an error naming the trained ones if there is none)."""
        if not self.per_bitwidth:
            return 0
        if bits not in self.slot_bits:
            raise ValueError(
                f"{self.name}: no per-bitwidth value for {format_bits(bits)} bits "
                f"(this layer has values for {list(self.slot_bits)})"
            )
        return self.slot_bits.index(bits)

    def value_for(self, bits: Bits) -> torch.Tensor:
        if not is_tensor_bits(bits):
            b = check_bits(bits, self.name)
            if b is None:
                return self.values[0]  # FP: the quantizer passes its input through; the value is not used
            return self.values[self.slot(b)]
        index = bits.clamp(0, FP_CODE).reshape(-1)  # index_select, not [], so a 0-dim index works inside vmap
        value = self.values.index_select(0, self.slot_of.index_select(0, index)).reshape(bits.shape)
        valid = self.has_slot.index_select(0, index).reshape(bits.shape) | (bits >= FP_CODE)
        return torch.where(valid, value, torch.full_like(value, float("nan")))

    def with_value(self, values: torch.Tensor, bits: Bits, new: torch.Tensor) -> torch.Tensor:
        """``values`` (this table's parameter, possibly a vmapped copy) with the slot of ``bits`` set to
        ``new`` — pure and vmap-safe, for parameter dicts of functional calls."""
        if not self.per_bitwidth:
            return new.reshape(1).expand_as(values).to(values.dtype)
        if not is_tensor_bits(bits):
            bits = torch.tensor(bits if bits is not None else FP_CODE, device=values.device)
        slot = self.slot_of.index_select(0, bits.clamp(0, FP_CODE).reshape(1))
        hit = torch.arange(values.shape[0], device=values.device) == slot
        return torch.where(hit, new.to(values.dtype), values)

    def usage(self, bits: Bits) -> torch.Tensor:
        """0/1 mask of the slots a Python bitwidth uses (none for FP)."""
        mask = torch.zeros_like(self.values.detach())
        b = check_bits(bits, self.name)
        if b is not None:
            mask[self.slot(b)] = 1.0
        return mask

    @torch.no_grad()
    def reset(self, value_of_bits: Callable[[int], torch.Tensor | float], shared_bits: int | None) -> None:
        """Set every slot from ``value_of_bits(b)``; a shared table uses ``shared_bits``."""
        if self.per_bitwidth:
            for slot, b in enumerate(self.slot_bits):
                self.values[slot] = value_of_bits(b)
        else:
            if shared_bits is None:
                raise ValueError(f"{self.name}: a shared value is initialised at a quantized bitwidth, got FP")
            self.values[0] = value_of_bits(shared_bits)

    @property
    def initialised(self) -> bool:
        return bool(torch.isfinite(self.values).all())

    def extra_repr(self) -> str:
        slots = ", ".join(map(str, self.slot_bits)) if self.per_bitwidth else "shared"
        return f"{self.name}: {slots}"
