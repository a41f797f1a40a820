"""Which parameters are what, and which ones a bitwidth task uses.

* :func:`parameter_kinds`: ``weight`` (conv/linear weights), ``bias``, ``bn`` (BatchNorm affine),
  ``weight_step`` / ``activation_step`` (LSQ steps), ``clip_level`` (SAT α). Engines use it to pick the
  inner-loop parameters of MAML (BN β is excluded there), weight-decay groups and the quirks that freeze
  quantizer steps.
* :func:`parameter_usage`: for one task, a 0/1 mask per parameter that says which elements the task's
  forward pass uses. MEBQAT averages each parameter's gradient over the tasks that use it (official
  §4.1 step 2, §4.3 "Aggregate"): a SAT α only counts tasks that quantize its activation, an LSQ step
  only tasks that quantize its layer (and, with per-bitwidth steps, only the slot of that bitwidth).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..quant import lsq, sat
from ..quant.bits import check_python_bits
from .layers import NORM_TYPES, ActQuant, QConv2d, QLinear
from .rules import LayerBits

KINDS = ("weight", "bias", "bn", "weight_step", "activation_step", "clip_level")


def parameter_kinds(model: nn.Module) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, _ in module.named_parameters(recurse=False):
            full = prefix + name
            if isinstance(module, NORM_TYPES):
                kinds[full] = "bn"
            elif isinstance(module, sat.ActivationQuantizer):
                kinds[full] = "clip_level"
            elif isinstance(module, lsq._StepTable):
                parent = model.get_submodule(module_name.rsplit(".", 1)[0])
                kinds[full] = "weight_step" if isinstance(parent, lsq.WeightQuantizer) else "activation_step"
            elif name == "bias":
                kinds[full] = "bias"
            else:
                kinds[full] = "weight"
    return kinds


def _quantized(bits: Any) -> bool:
    return check_python_bits(bits, "task") is not None


def _step_usage(table: lsq._StepTable, bits: Any) -> torch.Tensor:
    usage = torch.zeros_like(table.steps.detach())
    if _quantized(bits):
        usage[table.step_bits.index(bits) if table.per_bitwidth else 0] = 1.0
    return usage


def parameter_usage(model: nn.Module, task: Any) -> dict[str, torch.Tensor]:
    """0/1 masks, shaped like each parameter, of the elements that ``task`` (a Python task) uses."""
    bits: LayerBits = model.rules.resolve(task)
    usage = {name: torch.ones_like(p.detach()) for name, p in model.named_parameters()}
    for module_name, module in model.named_modules():
        if isinstance(module, (QConv2d, QLinear)):
            quantizer, site_bits = module.weight_quantizer, bits.weight(module.role)
            prefix = f"{module_name}.weight_quantizer"
        elif isinstance(module, ActQuant):
            quantizer, site_bits = module.quantizer, bits.activation(module.role)
            prefix = f"{module_name}.quantizer"
        else:
            continue
        if isinstance(quantizer, sat.ActivationQuantizer):
            usage[f"{prefix}.alpha"] = torch.full_like(quantizer.alpha.detach(), float(_quantized(site_bits)))
        elif isinstance(quantizer, (lsq.WeightQuantizer, lsq.ActivationQuantizer)):
            usage[f"{prefix}.table.steps"] = _step_usage(quantizer.table, site_bits)
    return usage
