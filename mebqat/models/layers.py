"""Quantization-aware building blocks. Each takes ``(x, bits)`` where ``bits`` is a resolved
:class:`~mebqat.models.rules.LayerBits`; the bitwidth is an argument, never part of the structure."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..quant import get_scheme
from ..quant.bits import FP_CODE, check_bits, format_bits, to_code
from .bnstats import active_recorder
from .rules import ROLES, LayerBits


class TakesBits:
    """Marker for modules whose forward is ``(x, bits)``."""


class FullPrecision(nn.Module):
    """The quantizer of a tensor that no task quantizes (the precision rules keep it FP): no parameters."""

    scheme = None

    def forward(self, x: torch.Tensor, bits: object) -> torch.Tensor:
        return x


@dataclass(frozen=True)
class QuantConfig:
    """Which quantizer family a model uses, with the options of its weight and activation quantizers."""

    scheme: str
    weight_options: Mapping[str, Any] = field(default_factory=dict)
    activation_options: Mapping[str, Any] = field(default_factory=dict)
    rescale_classifier: bool = False
    """SAT only: rescale the classifier's quantized weight to std 1/√out_features."""

    def __post_init__(self) -> None:
        get_scheme(self.scheme)
        if self.rescale_classifier and self.scheme != "sat":
            raise ValueError(f"rescale_classifier is a SAT option; scheme {self.scheme!r} has no classifier rescale")

    def weight_quantizer(self, weight: torch.Tensor, out_features: int | None = None) -> nn.Module:
        options = dict(self.weight_options)
        if out_features is not None and self.rescale_classifier:
            options["rescale_out_features"] = out_features
        return _construct(get_scheme(self.scheme).weight_quantizer, "weight", self.scheme, weight, **options)

    def activation_quantizer(self) -> nn.Module:
        return _construct(
            get_scheme(self.scheme).activation_quantizer, "activation", self.scheme, **self.activation_options
        )


def _construct(cls: type[nn.Module], kind: str, scheme: str, *args: Any, **options: Any) -> nn.Module:
    try:
        module = cls(*args, **options)
    except TypeError as err:
        raise ValueError(f"invalid {kind} quantizer options {sorted(options)} for scheme {scheme!r}: {err}") from None
    # the family its learned parameters are declared by (mebqat.models.params); setattr, as nn.Module's stub
    # admits only tensors and modules as attributes
    setattr(module, "scheme", scheme)  # noqa: B010
    return module


def _check_role(role: str, allowed: tuple[str, ...] = ROLES) -> str:
    if role not in allowed:
        raise ValueError(f"role must be one of {allowed}, got {role!r}")
    return role


class QConv2d(nn.Conv2d, TakesBits):
    """Conv2d whose weight is quantized at the bitwidth of its role. With ``channels_last`` set (by
    :func:`mebqat.models.memory_format.use_memory_format`) its output is channels-last even when its input has a
    single channel, where the layout is ambiguous and the convolution would fall back to NCHW."""

    channels_last = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        quant: QuantConfig | None,
        role: str,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        bias: bool = False,
        init: Callable[[nn.Conv2d], None] | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups, bias=bias
        )
        if init is not None:
            init(self)
        self.role = _check_role(role)
        self.weight_quantizer = FullPrecision() if quant is None else quant.weight_quantizer(self.weight)

    # the bitwidths are an argument of every layer (the module docstring), which Conv2d.forward has no room for
    def forward(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:  # type: ignore[override]
        out = self._conv_forward(x, self.weight_quantizer(self.weight, bits.weight(self.role)), self.bias)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out


class QLinear(nn.Linear, TakesBits):
    """Linear layer whose weight is quantized at the bitwidth of its role (SAT may rescale it)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        quant: QuantConfig | None,
        role: str,
        bias: bool = True,
        init: Callable[[nn.Linear], None] | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if init is not None:
            init(self)
        self.role = _check_role(role)
        self.weight_quantizer = (
            FullPrecision() if quant is None else quant.weight_quantizer(self.weight, out_features=out_features)
        )

    # the bitwidths are an argument of every layer (the module docstring), which Linear.forward has no room for
    def forward(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:  # type: ignore[override]
        return F.linear(x, self.weight_quantizer(self.weight, bits.weight(self.role)), self.bias)


class ActQuant(nn.Module, TakesBits):
    """An activation quantization site (after a nonlinearity, or at a quantized layer's input);
    ``quant=None`` for a site that the precision rules keep FP."""

    def __init__(self, quant: QuantConfig | None, role: str = "inter") -> None:
        super().__init__()
        self.role = _check_role(role, ("inter", "last"))
        self.quantizer = FullPrecision() if quant is None else quant.activation_quantizer()

    def forward(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        return self.quantizer(x, bits.activation(self.role))

    def extra_repr(self) -> str:
        return f"role={self.role}"


class BatchNorm2d(nn.BatchNorm2d, TakesBits):
    """Standard BatchNorm (γ, β); batch statistics always when ``track_running_stats=False``."""

    def forward(self, x: torch.Tensor, bits: LayerBits | None = None) -> torch.Tensor:
        return super().forward(x)


class BetaOnlyBatchNorm2d(nn.Module, TakesBits):
    """BatchNorm with γ fixed at 1 (a buffer) and a learned β, as in the authors' MAML CNN."""

    weight: torch.Tensor
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, track_running_stats: bool = False
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.track_running_stats = track_running_stats
        self.register_buffer("weight", torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: torch.Tensor, bits: LayerBits | None = None) -> torch.Tensor:
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_batch_stats, self.momentum, self.eps
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, track_running_stats={self.track_running_stats}"


class SwitchableBatchNorm2d(nn.Module, TakesBits):
    """One BatchNorm (affine parameters and running statistics) per trained bitwidth, selected by the
    task's b_w (AdaBits and Any-Precision DNN use b_w = b_a). A bitwidth without its own BatchNorm is
    refused: such a model cannot be evaluated there (the "–" cells of Table 2).

    Parameters are stacked ([S, C]) and selected by slot, so tensor tasks work inside ``vmap``. Training
    with running statistics updates them in place for a Python task; with a tensor task (inside ``vmap``,
    which cannot update buffers in place) the batch statistics are recorded instead and applied after the
    vmapped pass (:mod:`mebqat.models.bnstats`).
    """

    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    slot_of: torch.Tensor
    has_slot: torch.Tensor

    def __init__(
        self,
        num_features: int,
        bit_choices: tuple[int | None, ...],
        track_running_stats: bool = True,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if len(set(bit_choices)) != len(bit_choices) or not bit_choices:
            raise ValueError(f"switchable BatchNorm needs distinct bitwidths, got {bit_choices}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.bit_choices = tuple(bit_choices)
        self.track_running_stats = track_running_stats
        slots = len(bit_choices)
        self.weight = nn.Parameter(torch.ones(slots, num_features))
        self.bias = nn.Parameter(torch.zeros(slots, num_features))
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(slots, num_features))
            self.register_buffer("running_var", torch.ones(slots, num_features))
        else:
            self.running_mean = self.running_var = None
        slot_of = torch.zeros(FP_CODE + 1, dtype=torch.long)
        has_slot = torch.zeros(FP_CODE + 1, dtype=torch.bool)
        for slot, b in enumerate(bit_choices):
            slot_of[to_code(b)], has_slot[to_code(b)] = slot, True
        self.register_buffer("slot_of", slot_of, persistent=False)
        self.register_buffer("has_slot", has_slot, persistent=False)

    def slot(self, bits: int | None) -> int:
        code = to_code(check_bits(bits, "switchable BatchNorm"))
        if code not in [to_code(b) for b in self.bit_choices]:
            raise ValueError(
                f"this model has no BatchNorm for {format_bits(bits)}-bit tasks: it was trained at "
                f"{', '.join(format_bits(b) for b in self.bit_choices)} bits only"
            )
        return [to_code(b) for b in self.bit_choices].index(code)

    def forward(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        key = bits.w_inter
        use_batch_stats = self.training or not self.track_running_stats
        if not isinstance(key, torch.Tensor):
            s = self.slot(key)
            mean: torch.Tensor | None = None
            var: torch.Tensor | None = None
            if self.track_running_stats:
                assert self.running_mean is not None and self.running_var is not None  # registered when tracked
                mean, var = self.running_mean[s], self.running_var[s]
            return F.batch_norm(x, mean, var, self.weight[s], self.bias[s], use_batch_stats, self.momentum, self.eps)
        index = key.clamp(0, FP_CODE).reshape(1)
        running: tuple[torch.Tensor | None, torch.Tensor | None] | None
        if self.training and self.track_running_stats:
            recorder = active_recorder()
            if recorder is None:
                raise ValueError(
                    "switchable BatchNorm with running statistics trains with tensor tasks only inside "
                    "mebqat.models.bnstats.recording (vmap cannot update running statistics in place)"
                )
            dims = [0, 2, 3]
            count = x.numel() // x.shape[1]
            recorder.record(
                self, x.mean(dims).detach(), x.var(dims, unbiased=False).detach() * count / max(count - 1, 1)
            )
            use_batch_stats, running = True, (None, None)
        else:
            running = None
        slot = self.slot_of.index_select(0, index)
        pick = lambda t: None if t is None else t.index_select(0, slot)[0]  # noqa: E731
        if running is None:
            running = (pick(self.running_mean), pick(self.running_var))
        mean, var = running
        out = F.batch_norm(x, mean, var, pick(self.weight), pick(self.bias), use_batch_stats, self.momentum, self.eps)
        valid = self.has_slot.index_select(0, index)[0]
        return torch.where(valid, out, torch.full_like(out, float("nan")))

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, bits=[{', '.join(format_bits(b) for b in self.bit_choices)}], "
            f"track_running_stats={self.track_running_stats}"
        )


NormFactory = Callable[[int], nn.Module]


def switchable_batchnorm_factory(bit_choices: tuple[int | None, ...], track_running_stats: bool = True) -> NormFactory:
    return lambda channels: SwitchableBatchNorm2d(channels, tuple(bit_choices), track_running_stats)


def batchnorm_factory(track_running_stats: bool) -> NormFactory:
    return lambda channels: BatchNorm2d(channels, track_running_stats=track_running_stats)


class QSequential(nn.Sequential, TakesBits):
    """Sequential container that hands ``bits`` to the modules that take it."""

    # nn.Sequential.forward takes the input alone; this one needs the bitwidths too, so the override
    # cannot match its base class's signature.
    def forward(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:  # type: ignore[override]  # also takes bits
        for module in self:
            x = module(x, bits) if isinstance(module, TakesBits) else module(x)
        return x


NORM_TYPES = (nn.modules.batchnorm._NormBase, BetaOnlyBatchNorm2d, SwitchableBatchNorm2d)


def quantizer_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """(name, quantizer module, "weight" | "activation") of every quantization site of ``model``, whatever the
    quantizer family: the weight quantizer of each QConv2d/QLinear and the quantizer of each ActQuant."""
    for name, module in model.named_modules():
        if isinstance(module, (QConv2d, QLinear)):
            yield f"{name}.weight_quantizer", module.weight_quantizer, "weight"
        elif isinstance(module, ActQuant):
            yield f"{name}.quantizer", module.quantizer, "activation"
