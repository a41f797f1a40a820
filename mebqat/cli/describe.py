"""Describe a model: parameter count (weights, biases, BatchNorm affine), BatchNorm share, quantizer
parameters, precision rules, and every quantized weight and activation tensor with its role.

Examples:
  mebqat describe mobilenetv2_cifar
  mebqat describe maml_convnet --dataset omniglot --ways 20
  mebqat describe proto_convnet --dataset miniimagenet --json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

NAME = "describe"
HELP = "parameter counts, BatchNorm share and the quantized tensors of a model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..core.registry import MODELS, QUANTIZERS

    parser.add_argument("model", choices=MODELS.names(), help="registered model name")
    parser.add_argument("--dataset", help="few-shot nets: input preset (omniglot | miniimagenet)")
    parser.add_argument("--ways", type=int, help="maml_convnet: number of classes of the classifier")
    parser.add_argument(
        "--scheme", help=f"quantizer family ({' | '.join(QUANTIZERS.names())}); default: the model's own"
    )
    parser.add_argument("--running-stats", action="store_true", help="BatchNorm with running statistics")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"track_running_stats": args.running_stats}
    for key in ("dataset", "ways", "scheme"):
        value = getattr(args, key)
        if value is not None:
            kwargs[key] = value
    return kwargs


def format_description(name: str, info: dict[str, Any]) -> str:
    lines = [
        f"{name}  (quantizer family: {info['scheme']})",
        f"parameters (weights, biases, BatchNorm affine): {info['params']:,}",
        f"  BatchNorm affine parameters: {info['bn_params']:,} ({100 * info['bn_share']:.3f}% of the model)",
        f"  quantizer parameters (on top): {info['quantizer_params']:,}",
        f"  BatchNorm running statistics (buffers): {info['bn_running_stats']:,}",
        "precision rules: " + "; ".join(f"{k}: {v}" for k, v in info["rules"].items()),
    ]
    for kind, key in (("quantized weights", "weight_quantizers"), ("activation quantizers", "activation_quantizers")):
        entries = info[key]
        lines.append(f"{kind} ({len(entries)}):")
        for entry in entries:
            shape = "×".join(map(str, entry.get("shape", []))) if "shape" in entry else ""
            fp = "  (always FP under these rules)" if entry["always_fp"] else ""
            lines.append(f"  {entry['role']:<6} {entry['name']:<40} {shape}{fp}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..models import build, describe_model

    info = describe_model(build(args.model, **model_kwargs(args)))
    print(json.dumps({"model": args.model, **info}, indent=2) if args.json else format_description(args.model, info))
    return 0
