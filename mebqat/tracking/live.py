"""The MLflow run of a job while it runs (``mebqat run``): created when the job starts (status RUNNING, its
params and dataset input logged), each epoch's curve points logged once that epoch is durable (its
checkpoint written), and completed from the finished run directory at the end (FINISHED), so that it holds
exactly what ``mebqat track log`` would write from the files — logging the files again changes nothing. A
job that fails ends FAILED, one that is stopped (SIGTERM/SIGINT) KILLED; a resumed job continues the
same run (its status back to RUNNING) and first logs the epochs its predecessor finished but did not log.
The run directory stays the source of truth: the store is only ever told what the files say.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import dataset_identity
from ..core.hashing import config_hash
from .finished_run import read_finished_run
from .jobrecord import (
    TASK_TAG,
    curve_name,
    dataset_input,
    flatten_config,
    history_points,
    job_record,
    run_name,
    task_label,
)
from .publish import (
    LogResult,
    _delete_older,
    experiment_id,
    runs_with_key,
    write_inputs,
    write_metrics,
    write_params,
    write_tags,
)
from .record import CONTENT_TAG, KEY_TAG, KIND_TAG
from .retry import retrying
from .store import open_client
from .uri import experiment_artifact_location, resolve_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

HISTORY_PROBE = curve_name("train_loss")
"""A curve every epoch logs: its logged steps tell which epochs a run already holds."""
ATTEMPT_TAG = "mebqat.attempt"
"""The execution of the job (job_status.json's ``attempt``) that last opened the run."""


END_REASON_TAG = "mebqat.end_reason"
INTERRUPTIONS_TAG = "mebqat.interruptions"
"""What stopped the earlier attempts of a resumed run and for how long: MLflow's Duration of the run spans
them (start of the first attempt to end of the last), downtime included."""


DOWNTIME_NOTE = " (the run's Duration includes this downtime)"


def note_interruption(client: MlflowClient, run: Any, resumed_ms: int | None) -> None:
    """A run that resumes is no longer stopped: its end reason moves to the interruptions tag, with the time
    it stood still (a run killed by SIGKILL, or with its node, has no reason: it stopped without a word)."""
    reason = run.data.tags.get(END_REASON_TAG) or "stopped without a word (SIGKILL, or its machine went away)"
    stopped_ms = run.info.end_time
    if stopped_ms and resumed_ms:  # a process's start time is known to a second: a quick resume can read early
        reason += f"; resumed {format_seconds(max(0, resumed_ms - stopped_ms) / 1000)} later"
    earlier = run.data.tags.get(INTERRUPTIONS_TAG, "").removesuffix(DOWNTIME_NOTE)
    text = " | ".join(part for part in (earlier, reason) if part)
    retrying(client.set_tag, run.info.run_id, INTERRUPTIONS_TAG, text[-4900:] + DOWNTIME_NOTE)
    if END_REASON_TAG in run.data.tags:
        retrying(client.delete_tag, run.info.run_id, END_REASON_TAG)


def format_seconds(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {rest} s" if minutes else f"{rest} s"


class LiveRun:
    def __init__(self, client: MlflowClient, experiment: str, run_id: str, run_key: str, table: str) -> None:
        self.client, self.experiment, self.run_id, self.run_key, self.table = client, experiment, run_id, run_key, table

    @classmethod
    def open(
        cls,
        config: Mapping[str, Any],
        resuming: bool,
        uri: str | None = None,
        started_ms: int | None = None,
        client: MlflowClient | None = None,
        attempt: str | None = None,
    ) -> LiveRun:
        """The job's run: the one already opened for this execution (``attempt``, when a follower opens it
        again after a restart), else the newest one of its run key when the job resumes, else a new one
        started at ``started_ms`` (default: now); older runs of the key, from an earlier execution of the same
        job, are deleted once the new one exists."""
        uri = resolve_uri(uri)
        client = client or open_client(uri)
        table, key = config["job"]["table"], config_hash(config)
        exp = experiment_id(client, table, experiment_artifact_location(uri, table))
        existing = runs_with_key(client, exp, key)
        same = [r for r in existing if attempt is not None and r.data.tags.get(ATTEMPT_TAG) == attempt]
        if same:
            return cls(client, exp, same[-1].info.run_id, key, table)
        if resuming and existing:
            run = existing[-1]
            retrying(client.update_run, run.info.run_id, status="RUNNING")
            note_interruption(client, run, started_ms)
            if CONTENT_TAG in run.data.tags:  # no longer complete: the job is running again
                retrying(client.delete_tag, run.info.run_id, CONTENT_TAG)
            if attempt is not None:
                retrying(client.set_tag, run.info.run_id, ATTEMPT_TAG, attempt)
            return cls(client, exp, run.info.run_id, key, table)
        data = dataset_identity(config)
        tags = {
            KEY_TAG: key,
            KIND_TAG: "job",
            TASK_TAG: task_label(config["job"]),
            **({ATTEMPT_TAG: attempt} if attempt is not None else {}),
            **{f"mebqat.{k}": str(v) for k, v in config["job"].items() if v is not None},
        }
        run = retrying(client.create_run, exp, run_name=run_name(config["job"]), tags=tags, start_time=started_ms)
        live = cls(client, exp, run.info.run_id, key, table)
        write_params(client, live.run_id, flatten_config(config))
        write_inputs(
            client, live.run_id, [dataset_input(config, data["dataset"], data["is_standin"], data["stands_for"])]
        )
        for old in existing:
            retrying(client.delete_run, old.info.run_id)
        return live

    def logged_epochs(self) -> set[int]:
        """The epochs whose curve points the run holds."""
        return {m.step for m in retrying(self.client.get_metric_history, self.run_id, HISTORY_PROBE)}

    def is_complete(self, content_hash: str) -> bool:
        """The run is FINISHED and holds exactly the record of this content (a finish already done)."""
        run = retrying(self.client.get_run, self.run_id)
        return run.info.status == "FINISHED" and run.data.tags.get(CONTENT_TAG) == content_hash

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        """One durable epoch's history record."""
        write_metrics(self.client, self.run_id, list(history_points([dict(record)])))

    def catch_up(self, history: list[dict[str, Any]]) -> None:
        """Log the history records whose epochs the run does not hold yet (after a kill between an epoch's
        checkpoint and its logging)."""
        logged = self.logged_epochs()
        missing = [r for r in history if r["epoch"] not in logged]
        if missing:
            write_metrics(self.client, self.run_id, list(history_points(missing)))

    def finish(self, run_dir: str | Path, ended_ms: int | None = None) -> LogResult:
        """Complete the run from the finished directory (everything `mebqat track log` would write) and
        mark it FINISHED (at ``ended_ms``, default now)."""
        finished = read_finished_run(run_dir)
        record = job_record(finished)
        self.catch_up(finished.history)
        history_keys = {(p.key, p.step) for p in history_points(finished.history)}
        current = retrying(self.client.get_run, self.run_id).data
        # a finish tried again (the store failed half-way) adds only the result points not there yet
        curves = {key for key, _ in history_keys}
        write_metrics(
            self.client,
            self.run_id,
            [
                p
                for p in record.metrics
                if (p.key, p.step) not in history_keys and (p.key in curves or current.metrics.get(p.key) != p.value)
            ],
        )
        present = current.params  # params are immutable: add, never change
        write_params(self.client, self.run_id, {k: v for k, v in record.params.items() if k not in present})
        write_tags(self.client, self.run_id, record.tags)
        for artifact in record.artifacts:
            retrying(self.client.log_artifact, self.run_id, str(artifact.path), artifact.directory)
        retrying(self.client.set_tag, self.run_id, CONTENT_TAG, record.content_hash())
        retrying(self.client.set_terminated, self.run_id, "FINISHED", ended_ms)
        runs = runs_with_key(self.client, self.experiment, self.run_key)
        keep = next((r for r in runs if r.info.run_id == self.run_id), None)
        deleted = _delete_older(self.client, runs, keep) if keep is not None else ()
        return LogResult(self.table, self.run_key, self.run_id, "finished", deleted)

    def end(self, status: str, reason: str, ended_ms: int | None = None, best_effort: bool = True) -> None:
        """FAILED or KILLED, with the reason as a tag. ``best_effort`` (a job ending itself: its own error
        matters more) swallows a store error; a follower wants it, to try again."""
        try:
            retrying(self.client.set_tag, self.run_id, END_REASON_TAG, reason[:5000], attempts=2 if best_effort else 5)
            retrying(self.client.set_terminated, self.run_id, status, ended_ms, attempts=2 if best_effort else 5)
        except Exception:  # the store may be what failed
            if not best_effort:
                raise
