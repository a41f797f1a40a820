"""What is wrong with a store that fails, in one line: a tracking server that does not answer, a SQLite
file that is full, read-only or damaged. Read from the error's type name and text, so that this module needs
neither MLflow nor SQLAlchemy (the CLI asks it about any error, before MLflow is imported).

A *store problem* is the store being unavailable, not a wrong call: a job keeps training through one
(:mod:`mebqat.tracking.job_run`), a follower waits it out, a command names the file or server and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from .uri import TrackingError, resolve_uri, sqlite_path


@dataclass(frozen=True)
class StoreProblem:
    cause: str
    """What is wrong, e.g. ``does not answer (connection refused)``."""
    fix: str

    def line(self, store: str) -> str:
        return f"MLflow store {store} {self.cause}: {self.fix}"


_UNREACHABLE = (
    "max retries exceeded",
    "connection refused",
    "failed to establish a new connection",
    "read timed out",
    "connection aborted",
    "remotedisconnected",
    "connection reset",
    "name or service not known",
    "temporary failure in name resolution",
    "no route to host",
)
# (text in the error, what it means, the fix); {store} is the file or server
_DATABASE = (
    ("database or disk is full", "is full (database or disk is full)", "free space on its disk"),
    (
        "readonly database",
        "is read-only (attempt to write a readonly database)",
        "make it and its folder writable, or log to another store with --uri or MLFLOW_TRACKING_URI",
    ),
    (
        "disk image is malformed",
        "is damaged (database disk image is malformed)",
        "move it aside and run again: a new store is created, and `mebqat track log DIR` fills it from the run "
        "directories",
    ),
    (
        "file is not a database",
        "is damaged (file is not a database)",
        "move it aside and run again: a new store is created, and `mebqat track log DIR` fills it from the run "
        "directories",
    ),
    (
        "unable to open database file",
        "cannot be opened (unable to open database file)",
        "check that its folder exists and is writable, or log to another store with --uri or MLFLOW_TRACKING_URI",
    ),
    ("disk i/o error", "cannot be read or written (disk I/O error)", "check its disk, then run again"),
    (
        "database is locked",
        "stays locked by another writer",
        "find the process that holds it (fuser FILE), or run again later",
    ),
)
_SERVER_DOWN_CODES = ("TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL_ERROR")


def store_problem(err: BaseException) -> StoreProblem | None:
    """The store problem ``err`` reports, or None when it is something else (a wrong call, a bug)."""
    text = " ".join(str(err).split()).lower()
    for marker, cause, fix in _DATABASE:
        if marker in text:
            return StoreProblem(cause, fix)
    if any(marker in text for marker in _UNREACHABLE) or type(err).__name__ in (
        "ConnectionError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
    ):
        reason = next((m for m in _UNREACHABLE if m in text), "no answer")
        return StoreProblem(
            f"does not answer ({reason})",
            "start it (docs/cluster.md), or unset MLFLOW_TRACKING_URI to log into the embedded "
            "sqlite:///results/mlflow.db",
        )
    if type(err).__name__ == "MlflowException" and getattr(err, "error_code", None) in _SERVER_DOWN_CODES:
        first = " ".join(str(err).split())[:160]
        return StoreProblem(f"fails ({first})", "check the server's log, then run again")
    return None


def store_name(uri: str | None) -> str:
    """The store as a user knows it: the SQLite file, or the URI."""
    try:
        resolved = resolve_uri(uri)
    except TrackingError:
        return str(uri)
    path = sqlite_path(resolved)
    return str(path) if path is not None else resolved


def explain(err: BaseException, uri: str | None = None) -> str | None:
    """One line naming the store, what is wrong and the fix, when ``err`` is a store problem."""
    problem = store_problem(err)
    return None if problem is None else problem.line(store_name(uri))
