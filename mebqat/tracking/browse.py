"""Opening the MLflow UI on the runs.

MLflow 3.17's UI opens every experiment on its GenAI "Overview" (traces) in a browser that has never chosen
otherwise: which view it opens follows a per-browser "workflow type" (GenAI / Model training), not the
experiment's ``mlflow.experimentKind`` tag (which the store sets anyway). A link with
``?workflowType=machine_learning`` opens the runs table and switches that browser to model training, so
every link this project prints carries it.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator

from .store import open_client
from .uri import sqlite_path

RUNS_VIEW = "workflowType=machine_learning"
TABLE_EXPERIMENTS = ("table2", "table3", "table4", "table5")


def experiment_url(base: str, experiment_id: str) -> str:
    """The runs table of one experiment in the UI at ``base`` (e.g. http://127.0.0.1:5000)."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}?{RUNS_VIEW}"


def experiment_links(uri: str, base: str) -> Iterator[tuple[str, str]]:
    """(experiment name, runs-table URL) of each table experiment the store holds."""
    client = open_client(uri)
    for name in TABLE_EXPERIMENTS:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            yield name, experiment_url(base, experiment.experiment_id)


def serve(uri: str, host: str, port: int) -> int:
    """Print the links, then run ``mlflow ui`` on a SQLite store until it is stopped (a server store is
    browsed where it runs: only the links are printed)."""
    base = uri if sqlite_path(uri) is None else f"http://{host}:{port}"
    links = list(experiment_links(uri, base))
    for name, url in links:
        print(f"{name}: {url}")
    if not links:
        print(f"no table experiments in {uri} yet: run jobs first (`make tables`)")
    if sqlite_path(uri) is None:
        return 0
    print(f"serving {uri} at {base} (Ctrl-C stops)", flush=True)
    # this process becomes the server: a stop signal reaches it directly, nothing is left behind
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host,
                              "--port", str(port)])
