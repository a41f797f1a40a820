"""Model registry: ``build(name, **kw)`` for the five architectures of the paper.

Every model is called as ``model(x, task)``; the task is a bitwidth task (Python or tensor), never
part of the structure.
"""

from . import cnn_svhn, fewshot, mobilenetv2, preact_resnet  # noqa: F401  (each registers its models)
from .base import QuantizedModel
from .layers import (ActQuant, BatchNorm2d, BetaOnlyBatchNorm2d, QConv2d, QLinear, QSequential, QuantConfig,
                     TakesBits)
from .params import KINDS, parameter_kinds, parameter_usage
from .registry import available_models, build, get_model_entry, register_model
from .rules import LayerBits, PrecisionRules
from .summary import describe_model, parameter_counts

__all__ = ["KINDS", "parameter_kinds", "parameter_usage", "ActQuant", "BatchNorm2d", "BetaOnlyBatchNorm2d", "LayerBits", "PrecisionRules", "QConv2d", "QLinear",
           "QSequential", "QuantConfig", "QuantizedModel", "TakesBits", "available_models", "build",
           "describe_model", "get_model_entry", "parameter_counts", "register_model"]
