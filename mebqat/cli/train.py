"""Train one job (one table cell that needs its own model) into a run directory.

Examples:
  mebqat train --setup cifar10_preact_resnet20 --method mebqat --scale mini --out results/runs/r20-mebqat
  mebqat train --setup svhn_cnn8 --method qat --train-task "(4,4)" --out results/runs/svhn-qat-4
  mebqat train --config job.yaml --out DIR --set train.epochs=2
  mebqat train --setup svhn_cnn8 --method apdnn --print-config

A killed job restarted with the same command resumes from its last epoch checkpoint. Then run
`mebqat evaluate DIR` to write DIR/metrics.json (or `mebqat run` for both, and MLflow, in one process).
"""

from __future__ import annotations

import argparse

from .jobspec import add_job_arguments, add_runtime_arguments, job_config

NAME = "train"
HELP = "train one job into a run directory (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    parser.add_argument("--out", help="run directory (created; an existing one of the same job is resumed)")
    add_runtime_arguments(parser)
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    parser.add_argument(
        "--replace-stale",
        action="store_true",
        help="if --out holds a run of another configuration, delete it and start afresh (default: refuse)",
    )


def run(args: argparse.Namespace) -> int:
    import yaml

    config = job_config(args)
    if args.print_config:
        print(yaml.safe_dump(config, sort_keys=False), end="")
        return 0
    if not args.out:
        raise ValueError("--out DIR is required to train")
    from ..engine.runlock import run_lock

    with run_lock(args.out, NAME, create=False):  # a busy directory before torch's import (train holds it)
        from ..engine.job import set_threads
        from ..engine.loop import train

        set_threads(args.threads)
        train(config, args.out, device=args.device, replace_stale=args.replace_stale)
    return 0
