"""Evaluate a trained run at every tested bitwidth and write DIR/metrics.json (SPEC §6).

Examples:
  mebqat evaluate results/runs/r20-mebqat
  mebqat evaluate results/runs/r20-apdnn --tasks "(2,2)" "(FP,FP)"
  mebqat evaluate results/runs/x --checkpoint last

Without --tasks, the setup's bitwidths are evaluated and those the method cannot serve (Any-Precision
DNN and AdaBits at untrained bitwidths) are listed as not evaluated; asking for them explicitly is an error.
"""

from __future__ import annotations

import argparse

import torch

NAME = "evaluate"
HELP = "evaluate a trained run and write its metrics.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a directory written by `mebqat train`")
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="bitwidth tasks, e.g. '(4,4)' '(FP,FP)'")
    parser.add_argument("--checkpoint", choices=["best", "last"], help="default: the config's evaluate.checkpoint")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)


def run(args: argparse.Namespace) -> int:
    from ..engine.rundir import RunDir
    from ..methods import get_method

    if args.threads:
        torch.set_num_threads(args.threads)
    config = RunDir(args.run_dir).read_config()
    kind = get_method(config["job"]["method"]).kind
    if kind == "supervised":
        from ..engine.supervised import evaluate, format_results
    else:
        from ..engine.fewshot import evaluate, format_results  # type: ignore[no-redef]
    metrics = evaluate(args.run_dir, tasks=args.tasks, checkpoint=args.checkpoint, device=args.device)
    print(format_results(metrics))
    return 0
