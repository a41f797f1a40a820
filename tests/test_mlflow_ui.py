"""The MLflow UI, opened in a real headless browser (Debian's chromium) on a store the jobs logged to: the
link `mebqat track ui` prints for a table opens its runs table (not MLflow's GenAI overview), listing each
job by name with its dataset named as a stand-in, and a run's page lists its artifacts."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; "
                                                         ".ci/run installs it as root)")
METHODS = ("fomaml", "mebqat_maml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(url: str, screenshot: Path) -> str:
    """The page's DOM after its scripts ran (and a picture of it, kept for a failing test)."""
    common = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000",
              "--virtual-time-budget=20000"]
    subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, timeout=180)
    return subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout


@pytest.fixture(scope="module")
def store(data_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    for method in METHODS:
        done = subprocess.run([sys.executable, "-m", "mebqat", "run", "--setup", "maml_omniglot_20w1s", "--method",
                               method, "--scale", "smoke", "--set", f"data.root={data_root}", "--out",
                               str(root / method), "--uri", uri, "--threads", "1"],
                              capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr
    return root, uri


@pytest.fixture(scope="module")
def ui(store):
    root, uri = store
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mebqat", "track", "ui", "--uri", uri, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        link = server.stdout.readline().strip()
        assert link.startswith("table4: http://127.0.0.1:"), link
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "mlflow ui did not come up"
                time.sleep(0.5)
        yield link.split(": ", 1)[1], port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


@pytest.mark.slow
def test_the_printed_link_opens_the_runs_table_of_table4(ui, tmp_path):
    link, _ = ui
    assert link.endswith("?workflowType=machine_learning")
    dom = render(link, tmp_path / "table4.png")
    for method in METHODS:
        assert f"maml_omniglot_20w1s/{method}/smoke/official/seed0" in dom, f"{method} missing from the runs table"
    assert "glyphs28 (stand-in for Omniglot)" in dom  # the Dataset column
    assert "Run Name" in dom and "Dataset" in dom  # the runs table, not the GenAI overview


def test_a_run_page_lists_what_the_job_found(ui, store, tmp_path):
    link, port = ui
    from mlflow import MlflowClient

    client = MlflowClient(store[1])
    (run,) = client.search_runs([client.get_experiment_by_name("table4").experiment_id],
                                filter_string="tags.`mebqat.method` = 'fomaml'")
    experiment = link.split("/#/experiments/")[1].split("?")[0]
    page = f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs/{run.info.run_id}/artifacts?workflowType=machine_learning"
    dom = render(page, tmp_path / "run.png")
    for name in ("accuracy.svg", "accuracy.csv", "metrics.json", "train.log"):
        assert name in dom, f"{name} not among the run's artifacts"
