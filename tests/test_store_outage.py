"""The store misbehaves; nothing is lost and nothing is silent. A store that is down or damaged when a job
starts is refused in one line before anything is written; one that goes away during a job (a server stopped,
the disk of a SQLite store full) never stops the training: the job says so once, trains on, and its run
catches up when the store is back, or the job says how to log it later; a follower waits for the store
instead of timing out per run directory; the workflow names a damaged store when it starts."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
from mebqat_cli import MEBQAT, mebqat, one_thread_env, small_run_args  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow_server import free_port, mlflow_server  # noqa: E402

from mebqat.tracking.live import HISTORY_PROBE  # noqa: E402
from mebqat.tracking.store import check_store, init_store  # noqa: E402
from mebqat.tracking.store_problems import store_problem  # noqa: E402
from mebqat.tracking.uri import TrackingError  # noqa: E402

EPOCHS = 6


def run_args(data_root: Path, out: Path, *extra: str) -> list[str]:
    return small_run_args(data_root, out, EPOCHS, *extra)


def job_command(data_root: Path, out: Path, uri: str, *extra: str) -> list[str]:
    return [*MEBQAT, *run_args(data_root, out, "--uri", uri, *extra)]


def damage(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.seek(0)
        handle.write(b"not an sqlite header" * 4)


@pytest.fixture
def sqlite_store(tmp_path) -> tuple[str, Path]:
    path = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{path}"
    init_store(uri)
    return uri, path


@contextlib.contextmanager
def small_disk(where: Path, size: str = "8m"):
    """A tmpfs of ``size`` at ``where`` (root and mount(8) needed: the test is skipped without them)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``."""
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
    return filler


def wait_for(check, what: str, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def durable_epoch(out: Path) -> int:
    text = (out / "job_status.json").read_text() if (out / "job_status.json").is_file() else ""
    found = re.search(r'"durable_epoch": (\d+)', text)
    return int(found.group(1)) if found else 0


def finished_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("table2")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


# --- classification and the check before a job --------------------------------------------------------------


def test_a_server_that_does_not_answer_is_a_store_problem_not_a_bug(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(Exception) as raised:
        MlflowClient(f"http://127.0.0.1:{free_port()}").search_experiments()
    problem = store_problem(raised.value)
    assert problem is not None and "does not answer" in problem.cause
    assert store_problem(ValueError("metric 'x' at step 3 comes from two places")) is None


@pytest.mark.parametrize(
    "spoil, says",
    [
        (damage, "is damaged"),
        (lambda p: p.write_bytes(b""), None),  # an empty file: the job builds the store in it
        (lambda p: sqlite3.connect(p).execute("CREATE TABLE other (x)").connection.commit(), "not an MLflow store"),
    ],
    ids=["damaged", "empty", "foreign"],
)
def test_check_store_names_the_file_what_is_wrong_and_the_fix(tmp_path, spoil, says):
    path = tmp_path / "mlflow.db"
    if says != "not an MLflow store":
        init_store(f"sqlite:///{path}")
    spoil(path)
    if says is None:
        check_store(f"sqlite:///{path}", thorough=True)
        return
    with pytest.raises(TrackingError) as raised:
        check_store(f"sqlite:///{path}", thorough=True)
    line = str(raised.value)
    assert str(path) in line and says in line and "\n" not in line


def test_a_job_refuses_a_damaged_store_before_writing_its_run_directory(data_root, tmp_path, sqlite_store):
    uri, path = sqlite_store
    damage(path)
    out = tmp_path / "run"
    result = mebqat(*run_args(data_root, out, "--uri", uri))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "damaged" in lines[0] and "move it aside" in lines[0]
    assert not out.exists(), "nothing is written for a job that cannot log"
    init = mebqat("track", "init", "--uri", uri)
    assert init.returncode == 2 and "damaged" in init.stderr and "internal error" not in init.stderr


def test_a_job_refuses_a_server_that_does_not_answer_at_once(data_root, tmp_path):
    out = tmp_path / "run"
    started = time.monotonic()
    result = mebqat(*run_args(data_root, out, "--uri", f"http://127.0.0.1:{free_port()}"), timeout=120)
    assert result.returncode == 2 and "does not answer" in result.stderr, result.stderr
    assert not out.exists()
    assert time.monotonic() - started < 120  # the check is a /health request, not MLflow's minutes of retries


def test_a_read_only_store_is_refused_in_one_line(tmp_path):
    disk = tmp_path / "ro"
    with small_disk(disk):
        uri = f"sqlite:///{disk / 'mlflow.db'}"
        init_store(uri)
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        if remounted.returncode != 0:
            pytest.skip("cannot remount read-only here")
        with pytest.raises(TrackingError) as raised:
            check_store(uri)
        assert "read-only" in str(raised.value) or "cannot be opened" in str(raised.value)
        assert str(disk / "mlflow.db") in str(raised.value)


# --- an outage during a job ------------------------------------------------------------------------------------


def test_a_full_store_never_stops_training_and_the_run_catches_up_when_space_is_back(data_root, tmp_path):
    disk = tmp_path / "disk"
    with small_disk(disk):
        uri = f"sqlite:///{disk / 'mlflow.db'}"
        init_store(uri)
        out = tmp_path / "run"
        log = tmp_path / "job.log"
        with open(log, "w") as sink:
            job = subprocess.Popen(
                job_command(data_root, out, uri, "--set", f"train.epochs={EPOCHS * 4}"),
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=one_thread_env(),
            )
        try:
            wait_for(lambda: durable_epoch(out) >= 1 or job.poll() is not None, "the first epoch")
            job.send_signal(signal.SIGSTOP)  # the disk fills while the job is paused, between two epochs
            filler = fill(disk)
            job.send_signal(signal.SIGCONT)
            wait_for(lambda: "mlflow.db is full" in log.read_text() or job.poll() is not None, "the job to notice")
            job.send_signal(signal.SIGSTOP)
            filler.unlink()
            job.send_signal(signal.SIGCONT)
            assert job.wait(timeout=600) == 0, log.read_text()
        finally:
            if job.poll() is None:
                job.kill()
        text = log.read_text()
        assert text.count("mlflow.db is full") == 1 and "Traceback" not in text, text
        assert "training goes on" in text and "answers again" in text, text
        client = MlflowClient(uri)
        runs = finished_runs(client)
        assert [r.info.status for r in runs] == ["FINISHED"]
        steps = sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, HISTORY_PROBE))
        assert steps == list(range(1, EPOCHS * 4 + 1)), "every epoch once, those of the outage included"


def test_a_server_that_stops_during_a_job_leaves_the_job_finished_and_says_how_to_log_it(data_root, tmp_path):
    server_root = tmp_path / "server"
    out = tmp_path / "run"
    log = tmp_path / "job.log"
    with mlflow_server(server_root) as uri:
        with open(log, "w") as sink:
            job = subprocess.Popen(
                job_command(data_root, out, uri),
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=one_thread_env(),
            )
        wait_for(lambda: durable_epoch(out) >= 1 or job.poll() is not None, "the first epoch")
        job.send_signal(signal.SIGSTOP)
    job.send_signal(signal.SIGCONT)  # the server is gone
    try:
        assert job.wait(timeout=600) == 0, log.read_text()
    finally:
        if job.poll() is None:
            job.kill()
    text = log.read_text()
    assert text.count("training goes on") == 1 and "Traceback" not in text, text
    assert text.count("does not answer") == 2, "one line as the server goes, one as the job ends"
    assert f"mebqat track log {out}" in text, "the job says how to log its run later"
    assert (out / "metrics.json").is_file()
    with mlflow_server(server_root) as uri:  # the server is back (its database unchanged), on another port
        logged = mebqat("track", "log", str(out), "--uri", uri)
        assert logged.returncode == 0, logged.stderr
        client = MlflowClient(uri)
        runs = finished_runs(client)
        assert [r.info.status for r in runs] == ["FINISHED"], "the run left RUNNING is completed, not doubled"
        steps = sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, HISTORY_PROBE))
        assert steps == list(range(1, EPOCHS + 1))


# --- the follower and the workflow ---------------------------------------------------------------------------


def test_the_follower_waits_for_a_store_that_is_down_instead_of_timing_out_per_run(data_root, tmp_path):
    runs = tmp_path / "runs"
    for name in ("a", "b", "c"):
        done = mebqat(*run_args(data_root, runs / name, "--seed", str(ord(name)), "--tracking", "follower"))
        assert done.returncode == 0, done.stderr
    down = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    once = mebqat("track", "follow", str(runs), "--uri", down, "--once", timeout=300)
    assert once.returncode == 2
    lines = once.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not answer" in lines[0] and "3 run directories wait" in lines[0], once.stderr
    assert time.monotonic() - started < 300


def test_the_workflow_names_a_damaged_store_even_when_nothing_is_to_be_done(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    db = results / "mlflow.db"
    init_store(f"sqlite:///{db}")
    damage(db)
    env = {**os.environ}
    env.pop("MLFLOW_TRACKING_URI", None)
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "tables", "--config", f"results={results}"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert dry.returncode != 0
    assert str(db) in dry.stderr + dry.stdout and "damaged" in dry.stderr + dry.stdout
