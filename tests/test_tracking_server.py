"""Jobs logging at once into an MLflow tracking server, the setup docs/cluster.md recommends for a cluster
(many nodes must not share one SQLite file): every run arrives once and complete, and `mebqat track init`
refuses a server that would refuse the jobs' host name."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from urllib.parse import urlparse

import pytest
from mlflow import MlflowClient
from mlflow_server import mlflow_server
from tracking_runs import assert_run_matches, write_run

pytestmark = pytest.mark.slow

MEBQAT = [sys.executable, "-m", "mebqat"]
JOBS = [  # four jobs over the three experiments
    ("svhn_cnn8", "mebqat", None),
    ("svhn_cnn8", "qat", "(4,4)"),
    ("maml_miniimagenet_5w1s", "fomaml_qat", "(3,3)"),
    ("pn_omniglot_20w1s", "mebqat_pn", None),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server that accepts only the host name `localhost`, as one on a login node accepts only its own name."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server"), allowed_hosts="localhost:{port}") as uri:
        yield urlparse(uri).port


def mebqat(*args: str, uri: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*MEBQAT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return output


def test_concurrent_jobs_each_arrive_once(server, tmp_path):
    uri = f"http://localhost:{server}"
    finish(mebqat("track", "init", uri=uri))
    run_dirs = [
        write_run(tmp_path / f"job{i}", setup, method, train_task=task, epochs=5, seed=i)
        for i, (setup, method, task) in enumerate(JOBS)
    ]
    # every job a process of its own, all at once; the first job twice, as after a retried submission
    loggers = [mebqat("track", "log", str(run_dir), uri=uri) for run_dir in run_dirs + run_dirs[:1]]
    for logger in loggers:
        finish(logger)

    client = MlflowClient(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    runs = client.search_runs(list(experiments), max_results=1000)
    assert Counter(experiments[r.info.experiment_id] for r in runs) == {"table2": 2, "table4": 1, "table5": 1}
    for run_dir in run_dirs:  # exactly one run per job, holding every param, metric, history point and file
        assert_run_matches(client, run_dir)


def test_init_refuses_a_server_that_refuses_the_host_name(server):
    uri = f"http://127.0.0.1:{server}"
    init = mebqat("track", "init", uri=uri)
    output, _ = init.communicate(timeout=300)
    assert init.returncode != 0
    assert f"--allowed-hosts 127.0.0.1:{server}" in output, output
