"""A plugin as a user would write one, outside the package: a fourth quantizer family and two methods,
registered with their metadata. Loaded by ``MEBQAT_PLUGINS=tests/plugins/toy_plugin.py``; nothing in the
package names them.

* ``toy`` (quantizer family): weights quantized uniformly on [−max|w|, max|w|] with 2^b levels (1 bit: the
  sign times max|w|); activations clipped at a learned level α per site (PACT-like, init 6) with 2^b − 1
  steps above zero. Learned parameter: α (kind ``clip_level``).
* ``toy_sandwich`` (Table 2): each step trains the full-precision network and the lowest bitwidth of the
  family on the same batch, gradients summed ("sandwich" training).
* ``toy_pn_sandwich`` (Table 5): Prototypical Networks where every episode trains (FP,FP) and (2,2).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mebqat.core.registry import MethodInfo, QuantizerInfo, register_method, register_quantizer
from mebqat.core.tasks import BitwidthTask, bitwidth_candidates
from mebqat.methods.base import FP_TASK
from mebqat.methods.protonet import ProtoFamily
from mebqat.methods.supervised import SupervisedMethod
from mebqat.quant.bits import Bits, exp2, quantize_by_bits
from mebqat.quant.registry import QuantScheme
from mebqat.quant.ste import straight_through
from mebqat.quant.table import BitwidthTable

NAME = "toy"
CHOICES = (1, 2, 3, 4, 5, 6, 7, 8, 16, None)


def _weight(w: torch.Tensor, levels: float | torch.Tensor) -> torch.Tensor:
    scale = w.detach().abs().amax().clamp_min(1e-12)
    u = (torch.clamp(w / scale, -1, 1) + 1) / 2
    return straight_through(scale * (2 * torch.round(u * levels) / levels - 1), w)


def quantize_weight(w: torch.Tensor, bits: Bits) -> torch.Tensor:
    return quantize_by_bits(w, bits, NAME, 1, lambda b: _weight(w, exp2(b, w) - 1))


def quantize_activation(x: torch.Tensor, bits: Bits, alpha: torch.Tensor | float = 6.0) -> torch.Tensor:
    alpha = torch.as_tensor(alpha, dtype=x.dtype, device=x.device).abs()

    def quantized(b: int | torch.Tensor) -> torch.Tensor:
        levels = exp2(b, x) - 1
        clipped = torch.minimum(torch.relu(x), alpha)
        return straight_through(torch.round(clipped / alpha * levels) / levels * alpha, clipped)

    return quantize_by_bits(x, bits, NAME, 1, quantized)


class WeightQuantizer(nn.Module):
    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()

    def forward(self, w: torch.Tensor, bits: Bits) -> torch.Tensor:
        return quantize_weight(w, bits)


class ActivationQuantizer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.alpha = BitwidthTable(False, CHOICES, 6.0, "toy clipping level")

    def forward(self, x: torch.Tensor, bits: Bits) -> torch.Tensor:
        return quantize_activation(x, bits, self.alpha.value_for(bits))


register_quantizer(
    QuantizerInfo(
        NAME,
        impl=QuantScheme(
            quantize_weight=quantize_weight,
            quantize_activation=quantize_activation,
            weight_quantizer=WeightQuantizer,
            activation_quantizer=ActivationQuantizer,
        ),
        bit_choices=CHOICES,
        learned={"activation.alpha": "clip_level"},
        description="toy: uniform weights on ±max|w|, PACT-like activations with a learned clipping level",
    )
)


class ToySandwich(SupervisedMethod):
    def lowest(self) -> BitwidthTask:
        return min((t for t in bitwidth_candidates(self.family) if t.w == t.a and t.w is not None), key=lambda t: t.w)

    def model_options(self) -> dict[str, Any]:
        return {"track_running_stats": False}

    def trained_tasks(self) -> list[BitwidthTask]:
        return [FP_TASK, self.lowest()]

    def update(self, model: nn.Module, batch: Any, counter: Any) -> dict[str, torch.Tensor]:
        x, y = batch
        losses = [F.cross_entropy(model(x, task), y) for task in self.trained_tasks()]
        counter.forward(len(losses))
        torch.stack(losses).sum().backward()
        counter.backward(len(losses))
        self.clamp(model)
        return {"loss": torch.stack(losses).detach().mean()}


register_method(
    MethodInfo(
        "toy_sandwich",
        impl=ToySandwich,
        title="Toy sandwich",
        tables=("table2",),
        problem="supervised",
        description="FP and the lowest bitwidth on every batch, gradients summed",
    )
)


class ToyPNSandwich(ProtoFamily):
    divisor = "steps_by_usage"

    def base_task(self) -> BitwidthTask:
        return BitwidthTask(2, 2)

    def trained_tasks(self) -> list[BitwidthTask]:
        return bitwidth_candidates(self.family)

    def tasks_per_step(self) -> int:
        return 2

    def step_tasks(self, count: int) -> list[BitwidthTask]:
        return [FP_TASK, BitwidthTask(2, 2)]


register_method(
    MethodInfo(
        "toy_pn_sandwich",
        impl=ToyPNSandwich,
        title="Toy PN sandwich",
        tables=("table5",),
        problem="fewshot",
        description="Prototypical Networks trained at (FP,FP) and (2,2) on every episode",
    )
)
