"""Model registry: ``build(name, **kw)`` for the five architectures of the paper (entries of
:data:`mebqat.core.registry.MODELS`).

Every model is called as ``model(x, task)``; the task is a bitwidth task (Python or tensor), never
part of the structure.
"""

from .base import QuantizedModel
from .layers import (
    ActQuant,
    BatchNorm2d,
    BetaOnlyBatchNorm2d,
    QConv2d,
    QLinear,
    QSequential,
    QuantConfig,
    TakesBits,
    quantizer_modules,
)
from .params import parameter_kinds, parameter_usage, unused_parameters, usage_counts, usage_masks
from .registry import available_models, build
from .rules import LayerBits, PrecisionRules
from .summary import describe_model, parameter_counts

__all__ = [
    "ActQuant",
    "BatchNorm2d",
    "BetaOnlyBatchNorm2d",
    "LayerBits",
    "PrecisionRules",
    "QConv2d",
    "QLinear",
    "QSequential",
    "QuantConfig",
    "QuantizedModel",
    "TakesBits",
    "available_models",
    "build",
    "describe_model",
    "parameter_counts",
    "parameter_kinds",
    "parameter_usage",
    "quantizer_modules",
    "unused_parameters",
    "usage_counts",
    "usage_masks",
]
