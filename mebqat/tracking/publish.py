"""Writing a :class:`RunRecord` into the store exactly once per run key, safely under concurrency.

Idempotency design: one active run per (experiment, run key). The run carries the record's content hash.
- The newest FINISHED run of the key has the same content → nothing is written (re-logging is a no-op).
- Otherwise (first time, the job was re-run, a previous attempt died half-way) → a new run is written
  completely, marked FINISHED, and only then are the older runs of that key deleted.
A run is replaced rather than updated because MLflow cannot update it faithfully: params are immutable
(a config whose volatile keys changed could not be re-logged) and metric points cannot be removed
(a re-run's curve would be appended to the old one). Writing the new run before deleting the old one
means the job is never absent from the store, and a logger killed half-way leaves a run that the next
call replaces. Deleted runs are soft-deleted by MLflow; ``mlflow gc`` purges them.

Two loggers of the *same* job at once: the later-started run wins. Each logger, once its run is complete,
deletes the older runs of the key, or its own run when a later-started one is already complete (then it
reports "superseded"), so exactly one run remains whatever the interleaving. Experiments are
created-or-got, tolerating a concurrent creator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .describe import experiment_tags
from .record import CONTENT_TAG, KEY_TAG, DatasetRef, MetricPoint, RunRecord
from .retry import retrying
from .uri import TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

PARAMS_PER_BATCH = 100  # MLflow's log_batch limits
METRICS_PER_BATCH = 1000


@dataclass(frozen=True)
class LogResult:
    experiment: str
    run_key: str
    run_id: str
    action: str  # "created", "replaced", "unchanged" or "superseded"
    deleted: tuple[str, ...] = ()


def experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of the active experiment ``name``, creating it; its tags (description, kind, the runs table's
    view: ``describe.py``) are set where missing or out of date. A concurrent creator is not an error."""
    from mlflow.exceptions import MlflowException

    wanted = experiment_tags(name)
    for _ in range(3):
        experiment = retrying(client.get_experiment_by_name, name)
        if experiment is not None:
            if experiment.lifecycle_stage != "active":
                raise TrackingError(
                    f"experiment {name!r} is deleted in the store: restore it "
                    f"(`mlflow experiments restore --experiment-id {experiment.experiment_id}`) "
                    f"or purge it (`mlflow gc`)"
                )
            for key, value in wanted.items():
                if experiment.tags.get(key) != value:
                    retrying(client.set_experiment_tag, experiment.experiment_id, key, value)
            return experiment.experiment_id
        try:
            return retrying(client.create_experiment, name, artifact_location=artifact_location, tags=wanted)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    raise TrackingError(f"experiment {name!r} could be neither created nor found")


def runs_with_key(client: MlflowClient, experiment: str, run_key: str) -> list[Run]:
    """Active runs of ``run_key``, oldest first."""
    runs = retrying(client.search_runs, [experiment], filter_string=f"tags.`{KEY_TAG}` = '{run_key}'", max_results=1000)
    return sorted(runs, key=_age)


def _age(run: Run) -> tuple[int, str]:
    return run.info.start_time, run.info.run_id


def _delete_older(client: MlflowClient, runs: Sequence[Run], keep: Run) -> tuple[str, ...]:
    deleted = tuple(run.info.run_id for run in runs if run.info.run_id != keep.info.run_id and _age(run) < _age(keep))
    for run_id in deleted:
        retrying(client.delete_run, run_id)
    return deleted


def write_params(client: MlflowClient, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
        retrying(client.log_batch, run_id, params=items[start : start + PARAMS_PER_BATCH])


def write_metrics(client: MlflowClient, run_id: str, points: Sequence[MetricPoint]) -> None:
    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    # One timestamp per call: a retried batch then repeats identical rows, which the store ignores.
    now = get_current_time_millis()
    metrics = [Metric(m.key, m.value, now, m.step) for m in points]
    for start in range(0, len(metrics), METRICS_PER_BATCH):
        retrying(client.log_batch, run_id, metrics=metrics[start : start + METRICS_PER_BATCH])


def write_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, v) for k, v in tags.items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
        retrying(client.log_batch, run_id, tags=items[start : start + PARAMS_PER_BATCH])


def write_inputs(client: MlflowClient, run_id: str, inputs: Sequence[DatasetRef]) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    if inputs:
        retrying(
            client.log_inputs,
            run_id,
            datasets=[
                DatasetInput(
                    Dataset(name=d.name, digest=d.digest, source_type="local", source=d.source),
                    tags=[InputTag("mlflow.data.context", d.context)],
                )
                for d in inputs
            ],
        )


def _write(client: MlflowClient, run_id: str, record: RunRecord) -> None:
    write_params(client, run_id, record.params)
    write_metrics(client, run_id, record.metrics)
    write_tags(client, run_id, record.tags)
    write_inputs(client, run_id, record.inputs)
    for artifact in record.artifacts:
        retrying(client.log_artifact, run_id, str(artifact.path), artifact.directory)


def _is_deleted(client: MlflowClient, run_id: str) -> bool:
    try:
        return retrying(client.get_run, run_id).info.lifecycle_stage == "deleted"
    except Exception:
        return False


def publish(client: MlflowClient, record: RunRecord, artifact_location: str | None = None) -> LogResult:
    """Make the store hold exactly ``record`` under its run key (see the module's docstring)."""
    exp = experiment_id(client, record.experiment, artifact_location)
    content = record.content_hash()
    existing = runs_with_key(client, exp, record.run_key)
    finished = [r for r in existing if r.info.status == "FINISHED"]
    if finished and finished[-1].data.tags.get(CONTENT_TAG) == content:
        keep = finished[-1]
        return LogResult(
            record.experiment, record.run_key, keep.info.run_id, "unchanged", _delete_older(client, existing, keep)
        )
    run = retrying(client.create_run, exp, run_name=record.run_name, tags={KEY_TAG: record.run_key})
    run_id = run.info.run_id
    try:
        _write(client, run_id, record)
        retrying(client.set_tag, run_id, CONTENT_TAG, content)  # last: marks the record as complete
        retrying(client.set_terminated, run_id, "FINISHED")
    except BaseException as err:
        if _is_deleted(client, run_id) and isinstance(err, Exception):  # a later logger of this job won
            return _superseded(client, exp, record)
        _abandon(client, run_id)
        raise
    now = runs_with_key(client, exp, record.run_key)
    if any(_age(r) > _age(run) and r.info.status == "FINISHED" for r in now):
        # A later-started logger of the same job finished first (and could not see this run yet).
        retrying(client.delete_run, run_id)
        return _superseded(client, exp, record)
    return LogResult(
        record.experiment,
        record.run_key,
        run_id,
        "replaced" if existing else "created",
        _delete_older(client, now, run),
    )


def _superseded(client: MlflowClient, exp: str, record: RunRecord) -> LogResult:
    newest = runs_with_key(client, exp, record.run_key)
    return LogResult(record.experiment, record.run_key, newest[-1].info.run_id if newest else "", "superseded")


def _abandon(client: MlflowClient, run_id: str) -> None:
    """A half-written run is not a result: mark it FAILED and delete it (best effort, the error matters more)."""
    for call, args in ((client.set_terminated, (run_id, "FAILED")), (client.delete_run, (run_id,))):
        try:
            call(*args)
        except Exception:  # the caller re-raises the error that matters
            pass
