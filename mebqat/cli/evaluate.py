"""Evaluate a trained run at every tested bitwidth and write DIR/metrics.json (docs/methods-and-engines.md),
plus the per-item outcomes paired comparisons use (DIR/image_correct.npz or DIR/episode_accuracies.npz). With
--tasks, a subset goes to DIR/metrics-<tasks>.json (and its own per-item file): the full metrics.json is never
replaced.

Examples:
  mebqat evaluate results/runs/r20-mebqat
  mebqat evaluate results/runs/r20-apdnn --tasks "(2,2)" "(FP,FP)"
  mebqat evaluate results/runs/x --checkpoint last

Without --tasks, the setup's bitwidths are evaluated and those the method cannot serve (Any-Precision
DNN and AdaBits at untrained bitwidths) are listed as not evaluated; asking for them explicitly is an error.
"""

from __future__ import annotations

import argparse

from .jobspec import add_runtime_arguments

NAME = "evaluate"
HELP = "evaluate a trained run and write its metrics.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a directory written by `mebqat train`")
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="bitwidth tasks, e.g. '(4,4)' '(FP,FP)'")
    parser.add_argument("--checkpoint", choices=["best", "last"], help="default: the config's evaluate.checkpoint")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..engine.runlock import run_lock

    with run_lock(args.run_dir, NAME, create=False):  # a busy directory before torch's import (evaluate holds it)
        from ..engine.job import set_threads
        from ..engine.loop import evaluate
        from ..engine.metrics import format_results

        set_threads(args.threads)
        results = evaluate(args.run_dir, tasks=args.tasks, checkpoint=args.checkpoint, device=args.device)
    print(format_results(results))
    return 0
