"""Run one job end to end in one process: train (resuming if its directory holds a checkpoint), evaluate,
and log it to MLflow — what each job of the Snakemake workflow runs.

Examples:
  mebqat run --setup svhn_cnn8 --method mebqat --scale smoke --out results/runs/svhn-mebqat
  mebqat run --spec '{setup: pn_omniglot_20w1s, method: pn, scale: mini}' --out DIR --threads 1
  mebqat run ... --no-track                      # files only, no MLflow
  mebqat run ... --tracking follower             # MLflow written by `mebqat track follow` (the workflow)

The run directory is the source of truth: `mebqat train`, `mebqat evaluate` and `mebqat track log` do the
same three steps one at a time.
"""

from __future__ import annotations

import argparse

from .jobspec import add_job_arguments, add_runtime_arguments, job_config

NAME = "run"
HELP = "train, evaluate and log one job in one process (what the workflow runs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    add_run_arguments(parser)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the job runs and who tracks it (shared with `mebqat rehearse`, which runs this command)."""
    parser.add_argument("--out", required=True, help="run directory (created; an existing one of the same job resumes)")
    add_runtime_arguments(parser)
    parser.add_argument(
        "--replace-stale",
        action="store_true",
        help="if --out holds a run of another configuration, delete it and start afresh",
    )
    parser.add_argument(
        "--uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db)"
    )
    parser.add_argument(
        "--tracking",
        choices=("in-process", "follower", "off"),
        default="in-process",
        help="who writes the job's MLflow run: this process (default), a `mebqat track follow` "
        "process watching the run directory (what the workflow does: no MLflow import in "
        "the job), or nobody",
    )
    parser.add_argument(
        "--no-track", dest="tracking", action="store_const", const="off", help="do not log to MLflow (= --tracking off)"
    )


def run(args: argparse.Namespace) -> int:
    from ..engine.runlock import run_lock

    config = job_config(args)  # first: a bad job is refused before torch is imported (seconds)
    with run_lock(args.out, NAME, create=False):  # and a busy directory (run_job holds it for the job)
        from ..engine.job import run_job

        run_job(
            config,
            args.out,
            device=args.device,
            threads=args.threads,
            replace_stale=args.replace_stale,
            tracking=args.tracking,
            uri=args.uri,
        )
    return 0
