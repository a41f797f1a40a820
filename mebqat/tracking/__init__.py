"""MLflow tracking of finished jobs and built tables (docs/tracking.md).

The result files are the source of truth; MLflow mirrors them for browsing. mlflow is imported only when a
store is really used (it takes seconds to import).

    init_store(uri=None)                   create the store once, before concurrent jobs log into it
    log_run(run_dir, uri=None)             one finished job → one run of its table's experiment (idempotent)
    log_tables(tables_dir, figures_dir=None, uri=None)   tables → one run per table, folder and scale

``uri`` defaults to $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db (made absolute).
"""

from .jobs import log_run
from .publish import LogResult
from .store import StoreStatus, init_store
from .table_runs import log_tables
from .uri import DEFAULT_URI, TrackingError, browse_hint, resolve_uri

__all__ = [
    "DEFAULT_URI",
    "LogResult",
    "StoreStatus",
    "TrackingError",
    "browse_hint",
    "init_store",
    "log_run",
    "log_tables",
    "resolve_uri",
]
