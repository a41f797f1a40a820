"""Which MLflow store to use, and where its artifacts go (docs/tracking.md, "The store").

The store is ``--uri``, else ``$MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///results/mlflow.db``.
A relative SQLite path is made absolute against the current directory, so every job of a workflow and
``mlflow ui --backend-store-uri sqlite:///results/mlflow.db`` (run from the repository root) meet in the
same file. Artifacts of a SQLite store live beside it, in ``<store dir>/mlartifacts/<experiment>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_URI = "sqlite:///results/mlflow.db"
ENV_VAR = "MLFLOW_TRACKING_URI"
SQLITE_PREFIX = "sqlite:///"
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


class TrackingError(ValueError):
    """Bad input to the tracking layer (a store URI, a run directory, a tables directory), with the reason."""


def resolve_uri(uri: str | None = None) -> str:
    """The store URI to use, SQLite paths made absolute; file stores and in-memory SQLite are refused."""
    chosen = uri or os.environ.get(ENV_VAR) or DEFAULT_URI
    scheme = urlparse(chosen).scheme.split("+")[0]
    if scheme == "sqlite":
        return SQLITE_PREFIX + str(_sqlite_file(chosen))
    if scheme in DATABASE_SCHEMES or scheme in ("http", "https", "databricks"):
        return chosen
    raise TrackingError(
        f"unsupported MLflow tracking URI {chosen!r}: MLflow 3.13+ refuses file stores (./mlruns); use "
        f"{DEFAULT_URI} (the default), another sqlite:///PATH, a database URI or an http(s):// tracking server"
    )


def _sqlite_file(uri: str) -> Path:
    if not uri.startswith(SQLITE_PREFIX) or uri in (SQLITE_PREFIX, SQLITE_PREFIX + ":memory:"):
        raise TrackingError(
            f"SQLite tracking URI {uri!r} names no file: write sqlite:///relative/path.db or "
            f"sqlite:////absolute/path.db (an in-memory store would vanish with each job)"
        )
    # sqlite:///results/mlflow.db -> results/mlflow.db (relative); sqlite:////abs/x.db -> /abs/x.db
    return Path(uri[len(SQLITE_PREFIX) :]).expanduser().absolute()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite URI (made absolute), None for any other store."""
    return _sqlite_file(uri) if uri.startswith("sqlite:") else None


def artifact_root(uri: str) -> Path | None:
    """Where artifacts of a SQLite store go (beside it); None lets a server or MLflow decide."""
    path = sqlite_path(uri)
    return None if path is None else path.parent / "mlartifacts"


def experiment_artifact_location(uri: str, experiment: str) -> str | None:
    root = artifact_root(uri)
    return None if root is None else (root / experiment).as_uri()


def browse_hint(uri: str) -> str:
    """The command that opens the MLflow UI on this store's runs."""
    path = sqlite_path(uri)
    if path is not None:
        if uri == resolve_uri(DEFAULT_URI):
            return "browse the runs with: mebqat track ui"
        try:
            uri = SQLITE_PREFIX + str(path.relative_to(Path.cwd()))
        except ValueError:
            pass
    return f"browse the runs with: mebqat track ui --uri {uri}"
