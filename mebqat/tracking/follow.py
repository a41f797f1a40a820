"""Mirroring running jobs into MLflow from outside them (``mebqat track follow``): the workflow's jobs run
with ``--tracking follower`` and never import MLflow or open the store (seconds of CPU per job); one
follower process per workflow watches their run directories and keeps each job's MLflow run live — created
when the job starts (at the job's start time), each durable epoch's curve points as the job's
``job_status.json`` declares them durable, FINISHED with everything ``mebqat track log`` would write, FAILED
or KILLED with the reason, and the same run continued when the job resumes. The run directory stays the
source of truth; the follower only reads it, through the same :class:`~mebqat.tracking.live.LiveRun` a job
uses when it logs itself.

A finished directory is logged once: the follower then writes ``.mlflow-logged`` (the attempt it logged)
beside the files, and every later pass skips it, as long as the store holds that attempt's run (a store
deleted or replaced since is filled again). Each directory is synced under an exclusive lock
(``.mlflow.lock``), so a final pass (``--once``, the workflow's ``track_jobs`` rule) can run beside a live
follower without logging anything twice.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.files import InputError, read_yaml
from ..core.jobstatus import JobStatus, now_ms, read_status
from ..core.rundir_layout import STATUS, RunFiles
from .finished_run import read_finished_run
from .jobrecord import history_points, job_record
from .jobs import log_run
from .live import ATTEMPT_TAG, LiveRun
from .publish import write_metrics
from .store import _locked, check_store, open_client
from .store_problems import StoreProblem, store_name, store_problem
from .uri import TrackingError, resolve_uri

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
    status: JobStatus | None = None
    """The status synced last: an unchanged status needs no work (epochs count once durable, which the
    status says)."""
    done: bool = False


def logged_attempt(run_dir: Path) -> str | None:
    try:
        return (run_dir / MARKER).read_text().strip() or None
    except OSError:
        return None


def attempts_in_store(client: MlflowClient) -> set[str]:
    """The job executions (``mebqat.attempt`` tags) whose runs the store holds: a directory's marker says it
    was logged, but to a store that may since have been deleted or replaced."""
    ids = [e.experiment_id for e in client.search_experiments()]
    found: set[str] = set()
    token = None
    while ids:
        page = client.search_runs(
            ids, filter_string=f"tags.`{ATTEMPT_TAG}` LIKE '%'", max_results=1000, page_token=token
        )
        found |= {run.data.tags[ATTEMPT_TAG] for run in page}
        token = page.token
        if not token:
            break
    return found


def sync(run_dir: Path, mirror: Mirror, client: MlflowClient, uri: str, in_store: set[str] | None = None) -> Mirror:
    """Bring the MLflow run of ``run_dir`` up to what its files say; the updated mirror. ``in_store``: the
    executions the store holds runs of (:func:`attempts_in_store`), kept up to date; None trusts the markers."""
    status = read_status(run_dir)
    if status is None or status.tracking != "follower":
        return mirror  # not started yet, or logged by the job itself / by nobody
    if mirror.attempt == status.attempt and (mirror.done or status == mirror.status):
        return mirror
    with _locked(run_dir / LOCK):
        status = read_status(run_dir) or status  # what the job wrote while this process waited for the lock
        if (
            status.state == "finished"
            and logged_attempt(run_dir) == status.attempt
            and (in_store is None or status.attempt in in_store)
        ):
            return Mirror(status.attempt, status=status, done=True)
        if mirror.attempt != status.attempt:
            mirror = _open(run_dir, status, client, uri)
            if in_store is not None:
                in_store.add(status.attempt)
        assert mirror.live is not None
        if status.state == "finished":
            _finish(run_dir, status, mirror.live)
            mirror.done = True
        else:
            # epochs whose checkpoints are written; the job may be appending the next line right now
            fresh = [
                r
                for r in RunFiles(run_dir).history_so_far()
                if r["epoch"] <= status.durable_epoch and r["epoch"] not in mirror.logged
            ]
            if fresh:
                write_metrics(client, mirror.live.run_id, list(history_points(fresh)))
                mirror.logged |= {r["epoch"] for r in fresh}
            if status.state in END_STATUS:
                mirror.live.end(
                    END_STATUS[status.state], status.reason or status.state, ended_ms=status.ended_ms, best_effort=False
                )
                mirror.done = True
        mirror.status = status
        return mirror


def _open(run_dir: Path, status: JobStatus, client: MlflowClient, uri: str) -> Mirror:
    try:
        config = read_yaml(RunFiles(run_dir).config, "the job's resolved config")
    except InputError as err:
        raise RuntimeError(str(err)) from None
    live = LiveRun.open(
        config, resuming=status.resuming, uri=uri, started_ms=status.started_ms, client=client, attempt=status.attempt
    )
    return Mirror(status.attempt, live, live.logged_epochs())


def _finish(run_dir: Path, status: JobStatus, live: LiveRun) -> None:
    finished = read_finished_run(run_dir)
    if not live.is_complete(job_record(finished).content_hash()):
        live.finish(run_dir, ended_ms=status.ended_ms)
    (run_dir / MARKER).write_text(status.attempt + "\n")


def run_dirs(root: Path) -> list[Path]:
    """The run directories below ``root`` (those holding a ``job_status.json``; none is searched inside)."""
    found = []
    for here, subdirs, files in os.walk(root):
        if STATUS in files:
            found.append(Path(here))
            subdirs.clear()
        else:
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
    return sorted(found)


def still_running(status: JobStatus | None, since_ms: int) -> bool:
    """A job started since ``since_ms`` that may still write its end: running, and not a dead process of
    this host (a SIGKILLed job)."""
    if status is None or status.state != "running" or status.started_ms < since_ms:
        return False
    return status.host != socket.gethostname() or _alive(status.pid)


class Follower:
    """Syncs every run directory below ``root`` (see :func:`run_dirs`) into the store at ``uri``; the store
    is opened at the first pass."""

    RETRY_S = (1.0, 60.0)
    """A directory whose sync failed is tried again after 1 s, then twice as long each time, at most 60 s."""

    def __init__(self, root: str | Path, uri: str | None = None) -> None:
        self.root = Path(root)
        self.uri = resolve_uri(uri)
        self.client: MlflowClient | None = None
        self.in_store: set[str] = set()
        self.mirrors: dict[Path, Mirror] = {}
        self.errors: dict[Path, tuple[str, float, float]] = {}  # text, next try (monotonic), delay
        self.store_down: tuple[StoreProblem, float, float] | None = None  # the problem, next try, delay
        self.started_ms = now_ms()

    def sync_all(self, dirs: list[Path], final: bool = False) -> int:
        """One pass over ``dirs``; the number that could not be synced (each error reported once). A final
        pass retries at once and also logs a finished directory that has no status (an older version's). A
        store that is away ends the pass at once (one line when it goes, one when it is back): the
        directories wait for the next pass, not each for its own timeout."""
        if self.store_down is not None:
            if not final and time.monotonic() < self.store_down[1]:
                return len(dirs)
            try:
                check_store(self.uri)
            except TrackingError:
                self._store_away(self.store_down[0], len(dirs))
                return len(dirs)
            print(
                f"mebqat track follow: MLflow store {store_name(self.uri)} answers again", file=sys.stderr, flush=True
            )
            self.store_down = None
        failed = 0
        for index, run_dir in enumerate(dirs):
            text, retry_at, delay = self.errors.get(run_dir, ("", 0.0, 0.0))
            if not final and time.monotonic() < retry_at:
                failed += 1
                continue
            try:
                if self.client is None:
                    self.client = open_client(self.uri)
                    self.in_store = attempts_in_store(self.client)
                if final and read_status(run_dir) is None:
                    log_run(run_dir, self.uri)
                else:
                    self.mirrors[run_dir] = sync(
                        run_dir, self.mirrors.get(run_dir, Mirror()), self.client, self.uri, self.in_store
                    )
                self.errors.pop(run_dir, None)
            except Exception as err:  # one bad directory must not stop the others
                problem = store_problem(err)
                if problem is not None:
                    self._store_away(problem, len(dirs) - index)
                    return failed + len(dirs) - index
                failed += 1
                message = " ".join(str(err).split())[:500] or type(err).__name__
                if message != text:
                    print(f"mebqat track follow: {run_dir}: {message}", file=sys.stderr, flush=True)
                delay = self._longer(delay)
                self.errors[run_dir] = (message, time.monotonic() + delay, delay)
        return failed

    def _longer(self, delay: float) -> float:
        """The wait before the next try, after one of ``delay`` failed (:attr:`RETRY_S`)."""
        return min(max(2 * delay, self.RETRY_S[0]), self.RETRY_S[1])

    def _store_away(self, problem: StoreProblem, waiting: int) -> None:
        delay = self._longer(self.store_down[2] if self.store_down else 0.0)
        if self.store_down is None:
            print(
                f"mebqat track follow: {problem.line(store_name(self.uri))}; {waiting} run "
                f"director{'y waits' if waiting == 1 else 'ies wait'} (each is logged once the store is back)",
                file=sys.stderr,
                flush=True,
            )
        self.store_down = (problem, time.monotonic() + delay, delay)

    def sweep(self, final: bool = False) -> int:
        return self.sync_all(run_dirs(self.root), final)

    def follow(self, interval: float = 1.0, parent: int | None = None, grace: float = 60.0) -> int:
        """Sweep every ``interval`` seconds until SIGTERM/SIGINT or until process ``parent`` is gone; then,
        for at most ``grace`` seconds, until no job it follows is still running (a cancelled job writes
        that it was killed a moment after the workflow stops); then a last pass. 0 when that last pass
        synced everything."""
        stopping: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, frame: stopping.append(number))

        def wait(until: Callable[[], bool]) -> None:
            deadline = time.monotonic() + interval
            while not until() and time.monotonic() < deadline:
                time.sleep(min(0.1, interval))

        while not stopping and (parent is None or _alive(parent)):
            self.sweep()
            wait(lambda: bool(stopping))
        end = time.monotonic() + grace
        while time.monotonic() < end and any(
            still_running(read_status(d), self.started_ms) for d in run_dirs(self.root)
        ):
            self.sweep()
            wait(lambda: False)
        return 1 if self.sweep(final=True) else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
