"""Creating the MLflow store once, and opening a client on it.

Concurrent first-time creation of a SQLite store fails (every process runs the schema migration at once;
harness-conventions §2.2), so creation takes an exclusive ``flock`` on a lock file beside the database:
the first process migrates, the others wait and then find the tables in place. The workflow still calls
``mebqat track init`` once before its jobs, which also proves the store works before hours of training.

For a tracking server, ``init_store`` asks its ``/health`` endpoint and fails if it does not answer:
a workflow that was told to log to a server should stop at once, not after its first job; with ``wait_s``
it first waits, that long at most, for a server that is still starting (``mlflow server`` can take a minute
before it answers). Database URIs other than SQLite are migrated by one client call, without a lock (run
``init`` once, before the jobs).

:func:`check_store` is what a job asks before it trains (and ``init`` before a workflow): a server that does
not answer, or a SQLite file that is damaged, read-only or not a store, is refused in one line that names it,
before any run directory is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .retry import retrying
from .store_problems import explain
from .uri import TrackingError, artifact_root, browse_hint, resolve_uri, sqlite_path

if TYPE_CHECKING:
    from mlflow import MlflowClient

HEALTH_TIMEOUT_S = 10.0
WAIT_POLL_S = 2.0
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
"""MLflow's HTTP client retries a failed request 7 times with a doubling backoff, 120 s each: a server that is
down took 4 to 8 minutes to report, per call. These bound it to about a minute (1 + 2 + 4 s of backoff, 20 s a
request); a value set in the environment wins."""


@dataclass(frozen=True)
class StoreStatus:
    uri: str
    created: bool
    message: str


@contextlib.contextmanager
def _locked(lock_file: Path, shared: bool = False) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): rely on `mebqat track init` having run first
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:  # never deleted: removing a lock file races with its next user
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _has_schema(path: Path) -> bool:
    """MLflow's migrations have run on this file (alembic stamped a version)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)) as db:
            return bool(db.execute("SELECT count(*) FROM alembic_version").fetchone()[0])
    except sqlite3.Error:
        return False


def _ensure_sqlite(uri: str, fast: bool = True) -> bool:
    """Create the SQLite schema if it is not there yet; True when this call created it.

    ``fast`` (every job): a shared lock, which waits while a creator holds the exclusive one, and a read-only
    look at the schema version, instead of building MLflow's store under the exclusive lock (about a
    second each, one process at a time).
    """
    path = sqlite_path(uri)
    assert path is not None
    lock = path.with_name(path.name + ".lock")
    if fast and path.exists():
        with _locked(lock, shared=True):
            if _has_schema(path):
                return False
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with _locked(lock):
        fresh = not path.exists() or path.stat().st_size == 0
        path.parent.mkdir(parents=True, exist_ok=True)
        # Constructing the store runs the migrations when tables are missing; the default experiment it
        # creates then gets its artifacts beside the store instead of in ./mlruns.
        SqlAlchemyStore(uri, str(artifact_root(uri))).engine.dispose()
    return fresh


def health_status(uri: str, timeout: float = HEALTH_TIMEOUT_S) -> int | None:
    """The HTTP status a tracking server answers on ``/health``; None when it does not answer."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:  # refused, unreachable, timed out (URLError is an OSError)
        return None


def _wait_for_server(uri: str, wait_s: float) -> None:
    """Return once ``uri``/health answers 200, asking every few seconds for at most ``wait_s`` seconds (a server
    that is starting refuses connections, or answers 5xx); then let :func:`_check_server` say what is wrong."""
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        status = health_status(uri)
        if status is not None and (status == 200 or 400 <= status < 500):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if not said:
            print(f"waiting up to {wait_s:.0f} s for MLflow server {uri} to answer on /health", file=sys.stderr)
            said = True
        time.sleep(min(WAIT_POLL_S, left))


def _check_server(uri: str, wait_s: float = 0.0) -> None:
    """The server answers (waiting ``wait_s`` seconds at most for one that is starting), and accepts API calls
    under this URI's host name: MLflow's host check answers /health to any host but refuses the API (403) to
    one missing from its --allowed-hosts."""
    if wait_s > 0:
        _wait_for_server(uri, wait_s)
    base = uri.rstrip("/")
    try:
        with urllib.request.urlopen(base + "/health", timeout=HEALTH_TIMEOUT_S) as response:
            if response.status != 200:
                raise TrackingError(f"MLflow server {uri} answered {response.status} on /health")
        urllib.request.urlopen(
            base + "/api/2.0/mlflow/experiments/search?max_results=1", timeout=HEALTH_TIMEOUT_S
        ).close()
    except urllib.error.HTTPError as err:
        host = urlparse(uri).netloc
        hint = (
            f"; start the server with --allowed-hosts {host} (it accepts only localhost and private IP "
            f"addresses by default)"
            if err.code == 403
            else ""
        )
        raise TrackingError(f"MLflow server {uri} refuses API calls (HTTP {err.code}){hint}") from None
    except (urllib.error.URLError, OSError) as err:
        waited = f" after {wait_s:.0f} s" if wait_s > 0 else ""
        raise TrackingError(
            f"MLflow server {uri} does not answer{waited} ({err}); start it (docs/cluster.md), wait longer for one "
            f"that is starting (mebqat track init --wait SECONDS), or unset MLFLOW_TRACKING_URI to log into the "
            f"embedded sqlite:///results/mlflow.db"
        ) from None


def init_store(uri: str | None = None, wait_s: float = 0.0) -> StoreStatus:
    """Make the store ready for many concurrent writers; safe to call again (then it changes nothing). A
    tracking server that does not answer yet is waited for, ``wait_s`` seconds at most."""
    uri = resolve_uri(uri)
    hint = browse_hint(uri)
    if uri.startswith("sqlite:"):
        check_store(uri, thorough=True)
        created = _ensure_sqlite(uri, fast=False)  # builds the store: proves that it opens
        what = "created" if created else "already initialised"
        return StoreStatus(
            uri, created, f"MLflow store {sqlite_path(uri)} {what}; artifacts in {artifact_root(uri)}\n{hint}"
        )
    if uri.startswith(("http://", "https://")):
        _check_server(uri, wait_s)
        return StoreStatus(uri, False, f"MLflow server {uri} answers\n{hint}")
    if uri.startswith("databricks"):
        return StoreStatus(uri, False, f"{uri}: nothing to initialise (a hosted store); not checked")
    retrying(open_client(uri, ensure=False).search_experiments, max_results=1)  # migrates a fresh database
    return StoreStatus(uri, False, f"MLflow database {uri} ready\n{hint}")


def open_client(uri: str | None = None, ensure: bool = True) -> MlflowClient:
    """A client on the resolved store; a SQLite store is created first (under the lock) if needed; a server's
    requests give up within about a minute (:data:`HTTP_LIMITS`)."""
    from mlflow import MlflowClient

    uri = resolve_uri(uri)
    # MLflow's SQL store logs every database error with its traceback before raising it; the caller reports
    # the error itself, in one line (store_problems.py)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    if ensure and uri.startswith("sqlite:"):
        _ensure_sqlite(uri)
    if uri.startswith(("http://", "https://")):
        for name, value in HTTP_LIMITS.items():
            os.environ.setdefault(name, value)
    return MlflowClient(tracking_uri=uri)


def check_store(uri: str | None = None, thorough: bool = False) -> None:
    """Refuse, in one line naming the file or server and the fix, a store a job could not log to: a server
    that does not answer (the check of ``mebqat track init``), a SQLite file that cannot be opened, is not an
    MLflow store, cannot be written, or (``thorough``: SQLite's quick_check, which reads every page) is damaged.
    A SQLite file that does not exist yet passes: the job creates it."""
    uri = resolve_uri(uri)
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
        return
    path = sqlite_path(uri)
    if path is None or not path.exists():
        return
    if not path.is_file():
        raise TrackingError(f"MLflow store {path} is not a file: give --uri or MLFLOW_TRACKING_URI a database file")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=30)) as db:
            if thorough:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise sqlite3.DatabaseError(f"database disk image is malformed ({verdict})")
            db.execute("SELECT count(*) FROM alembic_version").fetchone()
            # a write that is rolled back: refused on a read-only file or file system, changes nothing
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE alembic_version SET version_num = version_num")
            db.rollback()
    except sqlite3.Error as err:
        if "no such table" in str(err):
            if path.stat().st_size == 0:
                return  # an empty file: the job builds the store in it
            raise TrackingError(
                f"MLflow store {path} is an SQLite file but not an MLflow store (no alembic_version table): give "
                f"--uri or MLFLOW_TRACKING_URI the store's file, or move this one aside"
            ) from None
        raise TrackingError(explain(err, uri) or f"MLflow store {path}: {err}") from None
