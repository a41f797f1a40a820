"""Quantizer steps of FP-trained baselines at meta-test (official §5.2, §5.3, §8.3).

A plain-FOMAML or plain-PN checkpoint holds no trained LSQ steps. The authors' test network for each
(task, bitwidth) run boots them itself:

* each activation step from the first batch it sees (the fine-tuning support set for MAML, support +
  query for PN), at the tested bitwidth: :func:`boot_activation_steps`;
* each weight step from the test network's *own random initialisation* (``fp_baseline_random_steps``,
  the official behaviour), or — the corrected behaviour — from the trained weights:
  :func:`weight_step_references` gives mean|w| per layer and :func:`boot_weight_steps` the steps
  2·mean|w|/√p at the tested bitwidth.

Both return parameter-dict entries for ``functional_call`` and are vmap-safe, so the per-episode boot
runs inside the batched meta-test.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models.base import precision_rules
from ..models.convnets import INIT_STD
from ..models.layers import QConv2d, QLinear
from ..quant import lsq
from .functional import ParamDict, call


def boot_activation_steps(
    model: nn.Module, params: ParamDict, buffers: ParamDict, x: torch.Tensor, task: Any
) -> ParamDict:
    """{step parameter name: booted value} of every LSQ activation site, from one forward of ``x`` at
    ``task`` (in the model's current mode)."""
    records: list = []
    with lsq.booting_activation_steps(records):
        call(model, params, buffers, x, task)
    names = {id(module): name for name, module in model.named_modules()}
    booted: ParamDict = {}
    for module, bits, step in records:
        key = f"{names[id(module)]}.step.values"
        booted[key] = module.step.with_value(params[key], bits, step)
    return booted


def _lsq_layers(model: nn.Module) -> list[tuple[str, QConv2d | QLinear, lsq.WeightQuantizer]]:
    """(name, layer, its LSQ weight quantizer) of every layer whose weights LSQ quantizes."""
    return [
        (name, m, m.weight_quantizer)
        for name, m in model.named_modules()
        if isinstance(m, (QConv2d, QLinear)) and isinstance(m.weight_quantizer, lsq.WeightQuantizer)
    ]


@torch.no_grad()
def weight_step_references(model: nn.Module, random_init: bool, seed: int) -> dict[str, torch.Tensor]:
    """mean|w| of every LSQ-quantized layer: of a fresh random initialisation (the authors' test nets;
    seeded here, with the few-shot nets' own init) or of the model's trained weights."""
    generator = torch.Generator().manual_seed(seed)
    references = {}
    for name, layer, _ in _lsq_layers(model):
        weight = layer.weight.detach()
        if random_init:
            weight = torch.empty(weight.shape, dtype=weight.dtype)
            if isinstance(layer, QLinear):
                nn.init.normal_(weight, 0.0, INIT_STD, generator=generator)
            else:
                nn.init.trunc_normal_(weight, 0.0, INIT_STD, -2 * INIT_STD, 2 * INIT_STD, generator=generator)
        references[name] = weight.abs().mean().to(layer.weight)
    return references


def boot_weight_steps(model: nn.Module, params: ParamDict, references: dict[str, torch.Tensor], task: Any) -> ParamDict:
    """{weight-step parameter name: 2·mean|w|/√p at the layer's bitwidth under ``task``} (vmap-safe)."""
    bits = precision_rules(model).resolve(task)
    booted: ParamDict = {}
    for name, layer, quantizer in _lsq_layers(model):
        layer_bits = bits.weight(layer.role)
        if layer_bits is None:  # a Python FP task: the step is not used
            continue
        step = lsq.step_from_mean_abs(references[name], layer_bits, signed=True)
        key = f"{name}.weight_quantizer.step.values"
        booted[key] = quantizer.step.with_value(params[key], layer_bits, step)
    return booted
