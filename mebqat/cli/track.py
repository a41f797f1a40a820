"""Mirror finished jobs and built tables into MLflow (docs/tracking.md). The result files stay the source of truth.

Examples:
  mebqat track init                                   # create results/mlflow.db once, before parallel jobs
  mebqat track init --wait 180 --uri http://login1:5000   # wait for a tracking server that is starting
  mebqat track log results/runs/svhn-mebqat           # one finished job (after `mebqat evaluate`)
  mebqat track log results/runs/* --uri sqlite:///elsewhere.db
  mebqat track tables results/tables --figures results/figures
  mebqat track follow results/runs                    # keep the runs of --tracking follower jobs live
  mebqat track ui                                     # serve the store; prints each table's runs-table link

The store is --uri, else $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db (relative to the current
directory). Logging a job again changes nothing; after the job was re-run, its run is replaced.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.rundir_layout import METRICS, RunFiles

if TYPE_CHECKING:
    from ..tracking import LogResult

NAME = "track"
HELP = "log finished jobs and built tables to MLflow, and browse them (init, log, tables, ui)"
URI_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db)"


def _action(
    actions: Any, name: str, run: Callable[[argparse.Namespace], int], help: str, description: str
) -> argparse.ArgumentParser:
    """One ACTION of ``mebqat track``; each takes --uri."""
    parser = actions.add_parser(
        name, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uri", help=URI_HELP)
    parser.set_defaults(action=run)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="track_command", metavar="ACTION", required=True)
    init = _action(
        actions,
        "init",
        run_init,
        help="create the store once (run before jobs log in parallel)",
        description="Create the MLflow store, or check it: a SQLite store gets its schema (safe to repeat; "
        "concurrent first-time creation would fail), a tracking server must answer on /health and accept "
        "API calls (with --wait, after waiting for one that is still starting).",
    )
    init.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for a tracking server that does not answer yet (default 0: fail at once)",
    )
    log = _action(
        actions,
        "log",
        run_log,
        help="log finished run directories, one MLflow run each",
        description="Log each finished run directory (config.yaml, history.jsonl, metrics.json, ...) as one "
        "run of its table's experiment: params = resolved config, metrics = training curves, "
        "headline test accuracies and costs, artifacts = the files (accuracy.csv: every bitwidth). "
        "Idempotent; an unfinished "
        "directory is refused.",
    )
    log.add_argument(
        "run_dirs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="directories written by `mebqat train` + `mebqat evaluate`",
    )
    tables = _action(
        actions,
        "tables",
        run_tables,
        help="attach table files and figures to a tables run per table (one per folder, scale and fidelity)",
        description="Attach table{2,3,4,5}.{csv,md,tex} from DIR (and the figures) to one run named "
        "'tables · <scale>-<fidelity>' in each table's experiment, one per DIR, scale and fidelity. Idempotent.",
    )
    tables.add_argument("tables_dir", type=Path, metavar="DIR", help="directory holding table2.csv, ...")
    tables.add_argument("--figures", type=Path, metavar="DIR", help="directory of figures (.png, .pdf, .svg)")
    tables.add_argument(
        "--claims",
        type=Path,
        nargs="+",
        default=[],
        metavar="FILE",
        help="the claims' verdicts (claims.csv, claims.md) to attach to every tables run",
    )
    follow = _action(
        actions,
        "follow",
        run_follow,
        help="keep the MLflow runs of jobs started with --tracking follower live, from their files",
        description="Watch ROOT/**/job_status.json and mirror each job started with `mebqat run "
        "--tracking follower` into MLflow while it runs: its run is created when the job "
        "starts, shows each durable epoch, and ends FINISHED (everything `track log` "
        "writes), FAILED or KILLED; a resumed job continues its run. Runs until SIGTERM "
        "(then one last pass), or once with --once. What the workflow starts beside its jobs.",
    )
    follow.add_argument("root", type=Path, metavar="ROOT", help="directory of run directories (results/runs)")
    follow.add_argument(
        "--once",
        nargs="*",
        type=Path,
        metavar="RUN_DIR",
        help="one final pass, then exit (2 if a directory failed): over the RUN_DIRs given (each "
        "must be finished; one without job_status.json is logged as `track log` would), "
        "else over every directory below ROOT",
    )
    follow.add_argument("--interval", type=float, default=1.0, help="seconds between passes (default 1)")
    follow.add_argument("--parent", type=int, metavar="PID", help="also stop when process PID has ended")
    ui = _action(
        actions,
        "ui",
        run_ui,
        help="browse the runs: the MLflow UI on the store, with each table's link",
        description="Print the link to each table experiment's runs table, then serve a SQLite store with "
        "MLflow's server app (as `mlflow ui` does) whose pages stay in the model-training views "
        "(never MLflow's GenAI pages) and show each runs table with method, bitwidth task, "
        "seed and accuracy columns (a tracking server is browsed where it runs).",
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000)")


def _terminate_cleanly() -> None:
    """SIGTERM (Snakemake cancelling, scancel) → SystemExit, so a half-written run is marked and removed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def run_init(args: argparse.Namespace) -> int:
    from ..tracking import init_store

    if not (args.wait >= 0 and math.isfinite(args.wait)):
        raise ValueError(f"--wait must be a number of seconds >= 0, got {args.wait}")
    print(init_store(args.uri, args.wait).message)
    return 0


def _report(result: LogResult) -> str:
    deleted = f", {len(result.deleted)} older run(s) deleted" if result.deleted else ""
    return f"{result.action}: experiment {result.experiment} run {result.run_id} (key {result.run_key}{deleted})"


def _each(items: list[Path], log: Callable[[Path], LogResult]) -> int:
    from mlflow.exceptions import MlflowException

    from ..tracking import TrackingError

    failed = 0
    for item in items:
        try:
            print(f"{item}: {_report(log(item))}")
        except (TrackingError, MlflowException, OSError) as err:
            failed += 1
            print(f"mebqat track: error: {item}: {err}", file=sys.stderr)
    return failed


def run_log(args: argparse.Namespace) -> int:
    from ..tracking import browse_hint, log_run, resolve_uri

    _terminate_cleanly()
    failed = _each(args.run_dirs, lambda run_dir: log_run(run_dir, args.uri))
    print(browse_hint(resolve_uri(args.uri)))
    if failed:
        print(f"mebqat track: {failed} of {len(args.run_dirs)} run directories were not logged", file=sys.stderr)
    return 2 if failed else 0


def run_tables(args: argparse.Namespace) -> int:
    from ..tracking import browse_hint, log_tables, resolve_uri

    _terminate_cleanly()
    for result in log_tables(args.tables_dir, args.figures, args.uri, tuple(args.claims)):
        print(f"{args.tables_dir}: {_report(result)}")
    print(browse_hint(resolve_uri(args.uri)))
    return 0


def run_follow(args: argparse.Namespace) -> int:
    from ..tracking.follow import Follower

    if not args.interval > 0:
        raise ValueError(f"--interval must be a positive number of seconds, got {args.interval}")
    if not args.root.is_dir():
        if args.once is not None or args.root.exists():
            raise ValueError(f"{args.root} is not a directory: give the directory that holds the run directories")
        args.root.mkdir(parents=True)  # the workflow starts its follower before the first job exists
    follower = Follower(args.root, args.uri)
    if args.once is not None:
        unfinished = [d for d in args.once if not RunFiles(d).metrics.is_file()]
        if unfinished:
            raise ValueError(f"--once {unfinished[0]}: no {METRICS} (the job has not finished): run it first")
        failed = follower.sync_all(args.once, final=True) if args.once else follower.sweep(final=True)
    else:
        print(f"following {args.root} into {follower.uri}", file=sys.stderr, flush=True)
        failed = follower.follow(args.interval, args.parent)
    return 2 if failed else 0


def run_ui(args: argparse.Namespace) -> int:
    from ..tracking import resolve_uri
    from ..tracking.browse import serve

    return serve(resolve_uri(args.uri), args.host, args.port)


def run(args: argparse.Namespace) -> int:
    from mlflow.exceptions import MlflowException

    try:
        return int(args.action(args))
    except MlflowException as err:  # the store refused (out-of-date schema, server error, ...)
        from ..tracking.store_problems import explain

        line = explain(err, getattr(args, "uri", None)) or err.message
        print(f"mebqat track {args.track_command}: error: {line}", file=sys.stderr)
        return 2
