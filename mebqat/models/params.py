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

from typing import Any, Iterator

import torch
from torch import nn

from ..quant import lsq, sat
from ..quant.table import BitwidthTable
from .layers import NORM_TYPES, ActQuant, QConv2d, QLinear, SwitchableBatchNorm2d
from .rules import LayerBits

KINDS = ("weight", "bias", "bn", "weight_step", "activation_step", "clip_level")


def _table_kind(quantizer: nn.Module) -> str:
    if isinstance(quantizer, lsq.WeightQuantizer):
        return "weight_step"
    if isinstance(quantizer, lsq.ActivationQuantizer):
        return "activation_step"
    if isinstance(quantizer, sat.ActivationQuantizer):
        return "clip_level"
    raise TypeError(f"unknown owner {type(quantizer).__name__} of a bitwidth table")


def parameter_kinds(model: nn.Module) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, _ in module.named_parameters(recurse=False):
            if isinstance(module, NORM_TYPES):
                kind = "bn"
            elif isinstance(module, BitwidthTable):
                kind = _table_kind(model.get_submodule(module_name.rsplit(".", 1)[0]))
            else:
                kind = "bias" if name == "bias" else "weight"
            kinds[prefix + name] = kind
    return kinds


def _sites(model: nn.Module, bits: LayerBits) -> Iterator[tuple[str, nn.Module, Any]]:
    """(name, quantizer module, the bitwidth it receives) for every quantization site."""
    for module_name, module in model.named_modules():
        if isinstance(module, (QConv2d, QLinear)):
            yield f"{module_name}.weight_quantizer", module.weight_quantizer, bits.weight(module.role)
        elif isinstance(module, ActQuant):
            yield f"{module_name}.quantizer", module.quantizer, bits.activation(module.role)


def parameter_usage(model: nn.Module, task: Any) -> dict[str, torch.Tensor]:
    """0/1 masks, shaped like each parameter, of the elements that ``task`` (a Python task) uses."""
    bits: LayerBits = model.rules.resolve(task)
    usage = {name: torch.ones_like(p.detach()) for name, p in model.named_parameters()}
    for prefix, quantizer, site_bits in _sites(model, bits):
        for table_name, table in quantizer.named_modules():
            if isinstance(table, BitwidthTable):
                usage[f"{prefix}.{table_name}.values"] = table.usage(site_bits)
    for module_name, module in model.named_modules():
        if isinstance(module, SwitchableBatchNorm2d):
            rows = torch.zeros(len(module.bit_choices), 1)
            rows[module.slot(bits.w_inter)] = 1.0
            for name in ("weight", "bias"):
                usage[f"{module_name}.{name}"] = rows.expand_as(getattr(module, name)).clone()
    return usage
