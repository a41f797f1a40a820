"""Mirroring running jobs into MLflow from outside them (``mebqat track follow``): the workflow's jobs run
with ``--tracking follower`` and never import MLflow or open the store (seconds of CPU per job); one
follower process per workflow watches their run directories and keeps each job's MLflow run live — created
when the job starts (at the job's start time), each durable epoch's curve points as the job's
``job_status.json`` declares them durable, FINISHED with everything ``mebqat track log`` would write, FAILED
or KILLED with the reason, and the same run continued when the job resumes. The run directory stays the
source of truth; the follower only reads it, through the same :class:`~mebqat.tracking.live.LiveRun` a job
uses when it logs itself.

A finished directory is logged once: the follower then writes ``.mlflow-logged`` (the attempt it logged)
beside the files, and every later pass skips it. Each directory is synced under an exclusive lock
(``.mlflow.lock``), so a final pass (``--once``, the workflow's ``track_jobs`` rule) can run beside a live
follower without logging anything twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..core.files import InputError, read_yaml
from ..core.jobstatus import FILE_NAME as STATUS_FILE
from ..core.jobstatus import JobStatus, read_status
from .jobrecord import history_points, job_record
from .live import LiveRun
from .publish import write_metrics
from .rundir import read_finished_run
from .store import open_client
from .uri import resolve_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

MARKER = ".mlflow-logged"
LOCK = ".mlflow.lock"
END_STATUS = {"failed": "FAILED", "killed": "KILLED"}


@dataclass
class Mirror:
    """What the follower knows of one directory's run."""
    attempt: str | None = None
    live: LiveRun | None = None
    logged: set[int] = field(default_factory=set)
    seen: tuple[int, int] = (0, 0)
    """(status, history) modification times at the last sync: unchanged files need no work."""
    done: bool = False


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    import fcntl

    with open(run_dir / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _durable_records(run_dir: Path, upto: int) -> list[dict[str, Any]]:
    """History records of epochs ≤ ``upto`` (their checkpoints are written). The job may be appending the
    next line right now: a partial last line is not read as an error."""
    try:
        lines = (run_dir / "history.jsonl").read_text().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int) and record["epoch"] <= upto:
            records.append(record)
    return records


def logged_attempt(run_dir: Path) -> str | None:
    try:
        return (run_dir / MARKER).read_text().strip() or None
    except OSError:
        return None


def sync(run_dir: Path, mirror: Mirror, client: "MlflowClient", uri: str) -> Mirror:
    """Bring the MLflow run of ``run_dir`` up to what its files say; the updated mirror."""
    status = read_status(run_dir)
    if status is None or status.tracking != "follower":
        return mirror  # not started yet, or logged by the job itself / by nobody
    seen = (_mtime(run_dir / STATUS_FILE), _mtime(run_dir / "history.jsonl"))
    if mirror.attempt == status.attempt and (mirror.done or seen == mirror.seen):
        return mirror
    with _locked(run_dir):
        if status.state == "finished" and logged_attempt(run_dir) == status.attempt:
            return Mirror(status.attempt, done=True, seen=seen)
        if mirror.attempt != status.attempt:
            mirror = _open(run_dir, status, client, uri)
        assert mirror.live is not None
        if status.state == "finished":
            _finish(run_dir, status, mirror.live)
            mirror.done = True
        else:
            fresh = [r for r in _durable_records(run_dir, status.durable_epoch) if r["epoch"] not in mirror.logged]
            if fresh:
                write_metrics(client, mirror.live.run_id, list(history_points(fresh)))
                mirror.logged |= {r["epoch"] for r in fresh}
            if status.state in END_STATUS:
                mirror.live.end(END_STATUS[status.state], status.reason or status.state, ended_ms=status.ended_ms)
                mirror.done = True
        mirror.seen = seen
        return mirror


def _open(run_dir: Path, status: JobStatus, client: "MlflowClient", uri: str) -> Mirror:
    try:
        config = read_yaml(run_dir / "config.yaml", "the job's resolved config")
    except InputError as err:
        raise RuntimeError(str(err)) from None
    live = LiveRun.open(config, resuming=status.resuming, uri=uri, started_ms=status.started_ms, client=client,
                        attempt=status.attempt)
    return Mirror(status.attempt, live, live.logged_epochs())


def _finish(run_dir: Path, status: JobStatus, live: LiveRun) -> None:
    finished = read_finished_run(run_dir)
    if not live.is_complete(job_record(finished).content_hash()):
        live.finish(run_dir, ended_ms=status.ended_ms)
    (run_dir / MARKER).write_text(status.attempt + "\n")


def _run_dirs(root: Path) -> list[Path]:
    try:
        return sorted(entry.parent for entry in root.rglob(STATUS_FILE))
    except OSError:
        return []


class Follower:
    """Syncs every run directory under ``root`` (each directory below it holding a ``job_status.json``) into
    the store at ``uri``."""

    def __init__(self, root: str | Path, uri: str | None = None) -> None:
        self.root = Path(root)
        self.uri = resolve_uri(uri)
        self.client = open_client(self.uri)
        self.mirrors: dict[Path, Mirror] = {}
        self.errors: dict[Path, str] = {}

    def sweep(self) -> int:
        """One pass over the directories; the number that could not be synced (each reported once)."""
        failed = 0
        for run_dir in _run_dirs(self.root):
            try:
                self.mirrors[run_dir] = sync(run_dir, self.mirrors.get(run_dir, Mirror()), self.client, self.uri)
                self.errors.pop(run_dir, None)
            except Exception as err:  # one bad directory must not stop the others
                failed += 1
                text = " ".join(str(err).split())[:500] or type(err).__name__
                if self.errors.get(run_dir) != text:
                    print(f"mebqat track follow: {run_dir}: {text}", file=sys.stderr, flush=True)
                self.errors[run_dir] = text
        return failed

    def follow(self, interval: float = 1.0, parent: int | None = None) -> int:
        """Sweep every ``interval`` seconds until SIGTERM/SIGINT or until process ``parent`` is gone, then a
        last sweep; 0 when that last sweep synced everything."""
        stopping: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, frame: stopping.append(number))
        while not stopping and (parent is None or _alive(parent)):
            self.sweep()
            deadline = time.monotonic() + interval
            while not stopping and time.monotonic() < deadline:
                time.sleep(min(0.1, interval))
        return 1 if self.sweep() else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

