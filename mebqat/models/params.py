"""Which parameters are what, and which ones a bitwidth task uses.

* :func:`parameter_kinds`: ``weight`` (conv/linear weights), ``bias``, ``bn`` (BatchNorm affine), and the
  kinds each quantizer family declares for its learned parameters in its registry entry (LSQ steps:
  ``weight_step`` / ``activation_step``; SAT α: ``clip_level``). Engines use them to pick the inner-loop
  parameters of MAML (BN β is excluded there), weight-decay groups and the quirks that freeze steps.
* :func:`parameter_usage`: for one task, a 0/1 mask per parameter that says which elements the task's
  forward pass uses. MEBQAT averages each parameter's gradient over the tasks that use it (official
  §4.1 step 2, §4.3 "Aggregate"): a SAT α only counts tasks that quantize its activation, an LSQ step
  only tasks that quantize its layer (and, with per-bitwidth steps, only the slot of that bitwidth).
  :func:`usage_masks` caches them per (model, task): they depend only on the structure.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..core.registry import QUANTIZERS, RegistryError
from ..quant.table import BitwidthTable
from .base import precision_rules
from .layers import NORM_TYPES, SwitchableBatchNorm2d, quantizer_modules
from .rules import LayerBits


def _quantizer_kind(family: str | None, site: str, path: str) -> str:
    """The declared kind of a learned quantizer parameter (``path``: its name inside the quantizer module)."""
    attribute = path.split(".", 1)[0]
    info = QUANTIZERS.get(family) if family else None
    kind = info.learned.get(f"{site}.{attribute}") if info else None
    if kind is None:
        raise RegistryError(
            f"quantizer family {family!r} does not declare its learned {site} parameter "
            f"{attribute!r}: add it to its registry entry's `learned` "
            f"(e.g. {{'{site}.{attribute}': 'clip_level'}})"
        )
    return kind


def parameter_kinds(model: nn.Module) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for prefix, quantizer, site in quantizer_modules(model):
        for path, _ in quantizer.named_parameters():
            kinds[f"{prefix}.{path}"] = _quantizer_kind(getattr(quantizer, "scheme", None), site, path)
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, _ in module.named_parameters(recurse=False):
            if prefix + name in kinds:
                continue
            kinds[prefix + name] = "bn" if isinstance(module, NORM_TYPES) else "bias" if name == "bias" else "weight"
    return {name: kinds[name] for name, _ in model.named_parameters()}


def _sites(model: nn.Module, bits: LayerBits) -> Iterator[tuple[str, nn.Module, Any]]:
    """(name, quantizer module, the bitwidth it receives) for every quantization site."""
    owners = dict(model.named_modules())
    for name, quantizer, site in quantizer_modules(model):
        owner = owners[name.rsplit(".", 1)[0]]
        yield name, quantizer, bits.weight(owner.role) if site == "weight" else bits.activation(owner.role)


def parameter_usage(model: nn.Module, task: Any) -> dict[str, torch.Tensor]:
    """0/1 masks, shaped like each parameter, of the elements that ``task`` (a Python task) uses."""
    bits: LayerBits = precision_rules(model).resolve(task)
    usage = {name: torch.ones_like(p.detach()) for name, p in model.named_parameters()}
    for prefix, quantizer, site_bits in _sites(model, bits):
        for table_name, table in quantizer.named_modules():
            if isinstance(table, BitwidthTable):
                usage[f"{prefix}.{table_name}.values"] = table.usage(site_bits).to(table.values.device)
    for module_name, module in model.named_modules():
        if isinstance(module, SwitchableBatchNorm2d):
            rows = torch.zeros(len(module.bit_choices), 1, device=module.weight.device)
            rows[module.slot(bits.w_inter)] = 1.0
            for name in ("weight", "bias"):
                usage[f"{module_name}.{name}"] = rows.expand_as(getattr(module, name)).clone()
    return usage


_USAGE_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[Any, tuple[dict[str, torch.Tensor], frozenset[str]]]] = (
    weakref.WeakKeyDictionary()
)


def _cached_usage(model: nn.Module, task: Any) -> tuple[dict[str, torch.Tensor], frozenset[str]]:
    per_model = _USAGE_CACHE.setdefault(model, {})
    if task not in per_model:
        masks = parameter_usage(model, task)
        per_model[task] = (masks, frozenset(name for name, mask in masks.items() if not bool(mask.any())))
    return per_model[task]


def usage_masks(model: nn.Module, task: Any) -> dict[str, torch.Tensor]:
    """:func:`parameter_usage`, computed once per (model, task) and reused (do not modify the masks): a
    training step then builds no masks and reads nothing back from the device."""
    return _cached_usage(model, task)[0]


def unused_parameters(model: nn.Module, task: Any) -> frozenset[str]:
    """Names of the parameters ``task`` does not use at all (known without touching the device)."""
    return _cached_usage(model, task)[1]


def usage_counts(model: nn.Module, tasks: list[Any]) -> dict[str, torch.Tensor]:
    """Per parameter element, how many of ``tasks`` use it (cached per task, summed per call)."""
    counts: dict[str, torch.Tensor] = {}
    for task in tasks:
        for name, mask in usage_masks(model, task).items():
            counts[name] = counts[name] + mask if name in counts else mask.clone()
    return counts
