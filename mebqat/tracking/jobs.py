"""Logging finished jobs: ``log_run(run_dir)`` mirrors one run directory into MLflow, idempotently."""

from __future__ import annotations

from pathlib import Path

from .finished_run import read_finished_run
from .jobrecord import job_record
from .publish import LogResult, publish
from .store import open_client
from .uri import experiment_artifact_location, resolve_uri


def log_run(run_dir: str | Path, uri: str | None = None) -> LogResult:
    """Log a finished job (config, history, metrics, costs, files) as one run of its table's experiment.

    The directory is read and checked completely before the store is touched, so an unfinished or
    inconsistent one logs nothing. Logging it again changes nothing; after the job was re-run, its run is
    replaced (see :mod:`mebqat.tracking.publish`).
    """
    record = job_record(read_finished_run(run_dir))
    uri = resolve_uri(uri)
    return publish(open_client(uri), record, experiment_artifact_location(uri, record.experiment))
