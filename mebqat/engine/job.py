"""One job end to end in one process (``mebqat run``, what every workflow job runs): train (resuming from
its last checkpoint), evaluate (unless its metrics.json is already current), and keep its MLflow run live
the whole time — RUNNING while it trains, each epoch's curves as they become durable, FINISHED with every
result at the end, FAILED or KILLED (with the reason) when it stops early.

Who writes that run is ``tracking``: ``in-process`` (this process opens the store), ``follower`` (the job
only keeps its ``job_status.json`` current and a ``mebqat track follow`` process mirrors the directory: the
workflow's way, so that no job pays MLflow's imports and store), or ``off``. The status file is written in
every mode."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..core.hashing import config_hash
from ..core.jobstatus import JobStatus, read_status, write_status
from .loop import evaluate, train
from .rundir import RunDir, holding_run_dir, job_logger


def set_threads(threads: int | None) -> None:
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"--threads must be a positive number of CPU threads, got {threads}")
        torch.set_num_threads(threads)


def metrics_current(run: RunDir, config: Mapping[str, Any]) -> bool:
    """metrics.json exists, was written for this configuration and after the last checkpoint, from the data the
    run recorded (the same content digest; training has just checked the files against that record)."""
    if not (run.metrics.is_file() and run.last.is_file()):
        return False
    try:
        metrics = json.loads(run.metrics.read_text())
        recorded = run.read_data_fingerprint()
        return (
            metrics["provenance"]["config_hash"] == config_hash(config)
            and run.metrics.stat().st_mtime >= run.last.stat().st_mtime
            and recorded is not None
            and metrics["provenance"].get("data_fingerprint", {}).get("digest") == recorded.digest
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


class Stopped(SystemExit):
    """SIGTERM/SIGINT while the job runs (a cancelled workflow, scancel)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signal = signal.Signals(signum).name


def _stop_on_signals() -> None:
    def stop(signum: int, frame: Any) -> None:
        raise Stopped(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)


TRACKING = ("in-process", "follower", "off")


def end_reason(err: BaseException, durable_epoch: int, epochs: int) -> str:
    """Why the job stopped, in the words its MLflow run and job_status.json show, e.g. ``killed by SIGTERM
    after epoch 3 of 12``: what stopped it and where (a killed job resumes from its last epoch with the
    same command)."""
    where = (
        f"after epoch {durable_epoch} of {epochs}"
        if 0 < durable_epoch < epochs
        else "during evaluation"
        if durable_epoch >= epochs
        else "before its first epoch ended"
    )
    if isinstance(err, Stopped):
        return f"killed by {err.signal} {where}"
    if isinstance(err, KeyboardInterrupt):
        return f"interrupted (Ctrl-C) {where}"
    message = " ".join(str(err).split())
    return f"failed {where}: {type(err).__name__}: {message}" if message else f"failed {where}: {type(err).__name__}"


@holding_run_dir("run")
def run_job(
    config: Mapping[str, Any],
    out: str | Path,
    *,
    device: str | None = None,
    threads: int | None = None,
    replace_stale: bool = False,
    tracking: str = "in-process",
    uri: str | None = None,
) -> dict[str, Any]:
    if tracking not in TRACKING:
        raise ValueError(f"tracking must be one of {', '.join(TRACKING)}, got {tracking!r}")
    set_threads(threads)
    run = RunDir(out)
    if tracking == "in-process":
        from ..tracking.store import check_store

        check_store(uri)  # a store that is down or damaged is refused before anything is written
    live: list[Any] = []  # the job's MLflow run (in-process tracking), once the run directory is ready
    status: list[JobStatus] = []  # this execution's status, once the run directory is ready

    def start(ready: RunDir) -> None:
        resuming = ready.last.is_file()
        # what the killed execution declared durable stays durable; history.jsonl may hold one epoch more
        # (killed between its line and its checkpoint), which this execution trains and logs again
        previous = read_status(ready.root) if resuming else None
        durable = previous.durable_epoch if previous is not None else 0
        status.append(JobStatus.begin(resuming, tracking).at_epoch(durable))
        write_status(ready.root, status[-1])
        if tracking == "in-process":
            from ..tracking.job_run import JobRun

            live.append(JobRun(config, ready.root, uri, job_logger(ready).info))
            live[0].open(resuming, status[-1].started_ms, status[-1].attempt, durable)

    def log_epoch(record: Mapping[str, Any]) -> None:
        status.append(status[-1].at_epoch(record["epoch"]))
        write_status(run.root, status[-1])
        if live:
            live[0].log_epoch(record)

    _stop_on_signals()
    try:
        train(config, out, device=device, replace_stale=replace_stale, on_epoch=log_epoch, on_start=start)
        if metrics_current(run, config):
            metrics = json.loads(run.metrics.read_text())
            job_logger(run).info(f"{run.metrics} is current: not evaluated again")
        else:
            metrics = evaluate(out, device=device)
        from .run_summary import write_run_summary

        write_run_summary(run.root, metrics)
    except BaseException as err:
        killed = isinstance(err, (Stopped, KeyboardInterrupt))
        if status:  # the live run exists only once the status does
            reason = end_reason(err, status[-1].durable_epoch, config["train"]["epochs"])
            status.append(status[-1].ended("killed" if killed else "failed", reason))
            with contextlib.suppress(OSError):  # a full disk that stopped the job must not hide why
                write_status(run.root, status[-1])
            if live:
                live[0].end("KILLED" if killed else "FAILED", reason, ended_ms=status[-1].ended_ms)
        raise
    if status:  # none when the directory was refused before training began
        status.append(status[-1].ended("finished"))
        write_status(run.root, status[-1])
    if live:
        result = live[0].finish(ended_ms=status[-1].ended_ms)
        if result is not None:
            print(f"MLflow: experiment {result.experiment}, run {result.run_id} finished", file=sys.stderr)
    return metrics
