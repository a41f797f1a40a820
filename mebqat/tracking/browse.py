"""Opening the MLflow UI on the runs (``mebqat track ui``).

A SQLite store is served by MLflow's own server app, run with uvicorn as ``mlflow ui`` runs it, whose index
page first sets the browser's preferences that MLflow 3.17's UI reads: the model-training views rather than
GenAI ones, and each table experiment's runs-table columns (``ui_app.py`` says why and how). Every link
printed also carries ``?workflowType=machine_learning``; a tracking server's links (plain MLflow, browsed
where it runs) also name the runs-table view the store carries (``viewStateShareKey``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .describe import SHARE_KEY
from .store import open_client
from .uri import artifact_root, sqlite_path

RUNS_VIEW = "workflowType=machine_learning"
TABLE_EXPERIMENTS = ("table2", "table3", "table4", "table5")


def experiment_url(base: str, experiment_id: str, shared_view: bool = False) -> str:
    """The runs table of one experiment in the UI at ``base`` (e.g. http://127.0.0.1:5000); with
    ``shared_view``, in the view the store carries (for a plain MLflow server)."""
    if shared_view:
        return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{RUNS_VIEW}&viewStateShareKey={SHARE_KEY}"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}?{RUNS_VIEW}"


def experiment_links(uri: str, base: str, shared_view: bool = False) -> Iterator[tuple[str, str]]:
    """(experiment name, runs-table URL) of each table experiment the store holds."""
    client = open_client(uri)
    for name in TABLE_EXPERIMENTS:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            yield name, experiment_url(base, experiment.experiment_id, shared_view)


def server_command(uri: str, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command and environment that serve ``uri`` (a SQLite store) as ``mlflow ui --backend-store-uri uri``
    would (artifacts proxied, new experiments' artifacts beside the store), with mebqat's index page."""
    import mlflow.server
    from mlflow.server.constants import (
        ARTIFACT_ROOT_ENV_VAR,
        ARTIFACTS_DESTINATION_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        REGISTRY_STORE_URI_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )

    artifacts = artifact_root(uri)
    assert artifacts is not None, uri
    env = {
        **os.environ,
        BACKEND_STORE_URI_ENV_VAR: uri,
        REGISTRY_STORE_URI_ENV_VAR: uri,
        ARTIFACT_ROOT_ENV_VAR: "mlflow-artifacts:/",
        SERVE_ARTIFACTS_ENV_VAR: "true",
        ARTIFACTS_DESTINATION_ENV_VAR: str(artifacts),
        "_MLFLOW_SGI_NAME": "uvicorn",
    }
    log_config = Path(mlflow.server.__file__).parent / "uvicorn_log_config.yaml"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "mebqat.tracking.ui_app:create_app",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        *(["--log-config", str(log_config)] if log_config.is_file() else []),
    ]
    return command, env


def serve(uri: str, host: str, port: int) -> int:
    """Print the links, then serve a SQLite store until stopped (a server store is browsed where it runs:
    only the links are printed)."""
    local = sqlite_path(uri) is not None
    base = f"http://{host}:{port}" if local else uri
    links = list(experiment_links(uri, base, shared_view=not local))
    for name, url in links:
        print(f"{name}: {url}")
    if not links:
        print(f"no table experiments in {uri} yet: run jobs first (`make tables`)")
    if not local:
        return 0
    print(f"serving {uri} at {base} (Ctrl-C stops); any page of it opens on the runs", flush=True)
    command, env = server_command(uri, host, port)
    # this process becomes the server: a stop signal reaches it directly, nothing is left behind
    os.execve(command[0], command, env)
