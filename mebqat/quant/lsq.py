"""LSQ (learned step size quantization), few-shot "Config 2", official-mebqat.md §2.1–§2.3.

Range: signed weights n = −2^(b−1), p = 2^(b−1) − 1; unsigned (post-ReLU) activations n = 0 and
    p = 2^b (``levels="official"``, the authors' code: 2^b + 1 levels) or p = 2^b − 1 (``levels="exact"``).
Forward: v = x/(s + 1e−6), x̂ = s·round(clip(v, n, p)).
Backward: ∂x̂/∂x = 1 on n ≤ v ≤ p, else 0;
          ∂x̂/∂s = g·[n·1(v<n) + p·1(v>p) + (round(v) − v)·1(n ≤ v ≤ p)] (summed over elements),
          with gradient scale g = 1/√(numel(x)·p) unless ``grad_scale`` is given.
Step init: s = 2·mean|x|/√p (weights at layer construction, activations on a calibration batch).

The per-layer modules hold either one step shared by every bitwidth (the authors' code: a higher
bitwidth only widens the clipping range) or one step per bitwidth (``per_bitwidth=True``, a proper
per-bitwidth grid); the step is looked up from the bitwidth, so tensor bitwidths work under vmap.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterable, Iterator
from typing import overload

import torch
from torch import nn

from ..core.registry import QUANTIZERS
from .bits import Bits, check_bits, exp2, is_full_precision, is_tensor_bits, quantize_by_bits, tensor_flags
from .registry import QuantScheme
from .ste import straight_through
from .table import BitwidthTable

NAME = "lsq"
EPS = 1e-6
LEVELS = ("official", "exact")
BIT_CHOICES = QUANTIZERS.get(NAME).bit_choices
MIN_BITS = QUANTIZERS.get(NAME).min_bits


@overload
def bounds(bits: int, like: torch.Tensor, signed: bool, levels: str = "official") -> tuple[float, float]: ...
@overload
def bounds(
    bits: torch.Tensor, like: torch.Tensor, signed: bool, levels: str = "official"
) -> tuple[float | torch.Tensor, torch.Tensor]: ...
def bounds(
    bits: int | torch.Tensor, like: torch.Tensor, signed: bool, levels: str = "official"
) -> tuple[float | torch.Tensor, float | torch.Tensor]:
    """(n, p) for a quantized bitwidth: Python floats for a Python int, tensors (n: 0.0 when unsigned) for a
    tensor."""
    if signed:
        half = exp2(bits - 1, like)
        return -half, half - 1
    if levels not in LEVELS:
        raise ValueError(f"lsq: levels must be one of {LEVELS}, got {levels!r}")
    top = exp2(bits, like)
    return 0.0, top if levels == "official" else top - 1


class _FusedFakeQuant(torch.autograd.Function):
    """LSQ with Python bounds as one autograd node: the forward is four element-wise passes and the backward
    recomputes the clipping from (x, step), where the expression form below builds some twenty nodes per call
    (on small CPU tensors the per-op cost dominates a quantized step). Values and gradients equal the
    expression form's (bitwise, up to the sign of a zero gradient: tests/test_quantizers.py); the backward's
    masks are detached as there, so a second derivative sees the same straight-through function.
    ``setup_context`` and ``generate_vmap_rule`` keep it usable under ``torch.func.grad`` and ``vmap``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, step: torch.Tensor, n: float, p: float, grad_scale) -> torch.Tensor:
        return step * torch.round(torch.clamp(x / (step + EPS), n, p))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, step, n, p, grad_scale = inputs
        ctx.save_for_backward(x, step)
        ctx.bounds = (n, p)
        ctx.grad_scale = grad_scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, step = ctx.saved_tensors
        n, p = ctx.bounds
        v = x.detach() / (step.detach() + EPS)
        clipped = torch.clamp(v, n, p)
        inside = v == clipped  # False for NaN, as n ≤ v ≤ p is
        grad_x = torch.where(inside, grad, 0.0) if ctx.needs_input_grad[0] else None
        grad_step = None
        if ctx.needs_input_grad[1]:
            step_coef = torch.where(inside, torch.round(clipped) - clipped, clipped)  # n below, p above
            grad_scale = ctx.grad_scale
            if isinstance(grad_scale, torch.Tensor):
                grad_scale = grad_scale.detach()
            grad_step = (grad * (grad_scale * step_coef)).sum_to_size(step.shape)
        return grad_x, grad_step, None, None, None


def _fake_quant(x: torch.Tensor, step: torch.Tensor, n, p, grad_scale) -> torch.Tensor:
    if not isinstance(n, torch.Tensor) and not isinstance(p, torch.Tensor):
        if not torch.is_grad_enabled():  # inference: the forward alone, no autograd node
            return _FusedFakeQuant.forward(x, step, n, p, grad_scale)
        if grad_scale is None:
            grad_scale = 1.0 / math.sqrt(x.numel() * p)
        return _FusedFakeQuant.apply(x, step, float(n), float(p), grad_scale)
    return _fake_quant_expression(x, step, n, p, grad_scale)


def _fake_quant_expression(x: torch.Tensor, step: torch.Tensor, n, p, grad_scale) -> torch.Tensor:
    """The specified forward and backward as straight-through expressions (tensor bounds, i.e. tensor
    bitwidths under ``vmap``; also the reference the fused node is tested against)."""
    v = x / (step + EPS)
    if isinstance(n, torch.Tensor) or isinstance(p, torch.Tensor):
        n, p = (torch.as_tensor(bound, dtype=x.dtype, device=x.device) for bound in (n, p))
        clipped = torch.minimum(torch.maximum(v, n), p)
    else:
        clipped = torch.clamp(v, n, p)
    value = step * torch.round(clipped)
    v = v.detach()
    inside = ((v >= n) & (v <= p)).to(x.dtype)
    step_coef = torch.where(v < n, n, torch.where(v > p, p, torch.round(v) - v))
    if grad_scale is None:
        grad_scale = (
            1.0 / torch.sqrt(torch.as_tensor(x.numel(), dtype=x.dtype, device=x.device) * p)
            if isinstance(p, torch.Tensor)
            else 1.0 / math.sqrt(x.numel() * p)
        )
    return straight_through(value, x * inside, step * (grad_scale * step_coef).detach())


def _quantize(
    x: torch.Tensor, bits: Bits, step: torch.Tensor | float, grad_scale, signed: bool, levels: str
) -> torch.Tensor:
    steps = step if isinstance(step, torch.Tensor) else torch.as_tensor(float(step), dtype=x.dtype, device=x.device)

    def quantized(b: int | torch.Tensor) -> torch.Tensor:
        n, p = bounds(b, x, signed, levels)
        return _fake_quant(x, steps, n, p, grad_scale)

    return quantize_by_bits(x, bits, NAME, MIN_BITS, quantized)


def quantize_weight(
    w: torch.Tensor, bits: Bits, step: torch.Tensor | float, grad_scale: float | torch.Tensor | None = None
) -> torch.Tensor:
    """Signed symmetric LSQ of a weight tensor."""
    return _quantize(w, bits, step, grad_scale, signed=True, levels="official")


def quantize_activation(
    x: torch.Tensor,
    bits: Bits,
    step: torch.Tensor | float,
    grad_scale: float | torch.Tensor | None = None,
    levels: str = "official",
    signed: bool = False,
) -> torch.Tensor:
    """LSQ of an activation: unsigned (post-ReLU) by default, ``signed=True`` for inputs of any sign."""
    if levels not in LEVELS:
        raise ValueError(f"lsq: levels must be one of {LEVELS}, got {levels!r}")
    return _quantize(x, bits, step, grad_scale, signed=signed, levels=levels)


def initial_step(x: torch.Tensor, bits: int, signed: bool, levels: str = "official") -> torch.Tensor:
    """LSQ's step initialisation 2·mean|x|/√p."""
    _, p = bounds(bits, x, signed, levels)
    return 2 * x.detach().abs().mean() / math.sqrt(p)


def step_from_mean_abs(mean_abs: torch.Tensor, bits: Bits, signed: bool, levels: str = "official") -> torch.Tensor:
    """2·mean|x|/√p, given mean|x|, for a Python or tensor bitwidth (vmap-safe; FP/invalid tensor
    bitwidths get the 2-bit value, which FP tasks never use)."""
    if not is_tensor_bits(bits):
        b = check_bits(bits, NAME, MIN_BITS)
        if b is None:
            raise ValueError("lsq: a full-precision task has no step")
        _, p = bounds(b, mean_abs, signed, levels)
        return 2 * mean_abs / math.sqrt(p)
    _, _, safe = tensor_flags(bits, MIN_BITS)
    _, p_tensor = bounds(safe, mean_abs, signed, levels)
    return 2 * mean_abs / torch.sqrt(p_tensor)


def boot_step(x: torch.Tensor, bits: Bits, signed: bool, levels: str = "official") -> torch.Tensor:
    """The authors' lazy step boot from a batch: 2·mean|x|/√p (detached)."""
    return step_from_mean_abs(x.detach().abs().mean(), bits, signed, levels)


_BOOT_RECORDS: contextvars.ContextVar[list | None] = contextvars.ContextVar("lsq_boot", default=None)


@contextlib.contextmanager
def booting_activation_steps(records: list) -> Iterator[list]:
    """Inside this context every LSQ activation quantizer ignores its stored step, boots one from its
    input (:func:`boot_step`), quantizes with it and appends ``(module, bits, step)`` to ``records`` —
    one forward pass sets every site, each seeing the previous sites already quantized, as the authors'
    lazily booted test networks do. Pure, so it works inside ``vmap``."""
    token = _BOOT_RECORDS.set(records)
    try:
        yield records
    finally:
        _BOOT_RECORDS.reset(token)


class WeightQuantizer(nn.Module):
    """Per-layer LSQ weight quantizer; the step is booted from the layer's initial weight."""

    scheme = NAME

    def __init__(
        self,
        weight: torch.Tensor,
        init_bits: int = 2,
        per_bitwidth: bool = False,
        bit_choices: Iterable[int | None] = BIT_CHOICES,
    ) -> None:
        super().__init__()
        self.init_bits = check_bits(init_bits, NAME, MIN_BITS)
        self.step = BitwidthTable(per_bitwidth, bit_choices, float("nan"), "lsq weight step", min_bits=MIN_BITS)
        self.reset_step(weight)

    def reset_step(self, weight: torch.Tensor) -> None:
        """Boot the step(s) from a weight tensor: 2·mean|w|/√p at ``init_bits`` (or at each slot's bits)."""
        self.step.reset(lambda b: initial_step(weight, b, signed=True), self.init_bits)

    def step_for(self, bits: Bits) -> torch.Tensor:
        return self.step.value_for(bits)

    def forward(self, w: torch.Tensor, bits: Bits) -> torch.Tensor:
        return quantize_weight(w, bits, self.step.value_for(bits))


class ActivationQuantizer(nn.Module):
    """Per-site LSQ activation quantizer. Its step starts uncalibrated (NaN, so that forgetting to
    calibrate fails loudly) and is set from a batch by :func:`mebqat.quant.calibrate_activation_steps`."""

    scheme = NAME

    def __init__(
        self,
        levels: str = "official",
        signed: bool = False,
        per_bitwidth: bool = False,
        bit_choices: Iterable[int | None] = BIT_CHOICES,
    ) -> None:
        super().__init__()
        if levels not in LEVELS:
            raise ValueError(f"lsq: levels must be one of {LEVELS}, got {levels!r}")
        self.levels = levels
        self.signed = signed
        self.step = BitwidthTable(per_bitwidth, bit_choices, float("nan"), "lsq activation step", min_bits=MIN_BITS)
        self.calibrating = False

    @property
    def calibrated(self) -> bool:
        return self.step.initialised

    def calibrate(self, x: torch.Tensor, bits: int | None) -> None:
        """Set the step(s) from an input batch: 2·mean|x|/√p (the authors' lazy boot on the first forward)."""
        self.step.reset(lambda b: initial_step(x, b, self.signed, self.levels), check_bits(bits, NAME, MIN_BITS))

    def step_for(self, bits: Bits) -> torch.Tensor:
        return self.step.value_for(bits)

    def forward(self, x: torch.Tensor, bits: Bits) -> torch.Tensor:
        if self.calibrating:
            if is_tensor_bits(bits):
                raise ValueError("lsq: calibrate activation steps with a Python bitwidth task, not a tensor")
            self.calibrate(x, bits)
        if is_full_precision(bits, NAME, MIN_BITS):
            return x
        records = _BOOT_RECORDS.get()
        if records is not None:
            step = boot_step(x, bits, self.signed, self.levels)
            records.append((self, bits, step))
        else:
            step = self.step.value_for(bits)
        return quantize_activation(x, bits, step, levels=self.levels, signed=self.signed)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, signed={self.signed}"


SCHEME = QuantScheme(
    quantize_weight=quantize_weight,
    quantize_activation=quantize_activation,
    weight_quantizer=WeightQuantizer,
    activation_quantizer=ActivationQuantizer,
)
