"""A job's MLflow run is live: RUNNING while the job trains (with its epochs so far), FINISHED after; KILLED
when the job is cancelled (SIGTERM, what Snakemake and scancel send) and FAILED when it fails; a job
killed at any point (even with SIGKILL, which nothing can catch) and started again continues the same run,
and the store ends with one run per job, its curve logged once per epoch, and real start and end times.
Logging the finished directory again afterwards changes nothing. All of it both when the job writes its run
itself (``--tracking in-process``) and when a ``mebqat track follow`` process writes it from the job's files
(``--tracking follower``, the workflow's way)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mebqat_cli import MEBQAT, job_args, mebqat, one_thread_env

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

from mebqat.tracking.live import HISTORY_PROBE  # noqa: E402
from mebqat.tracking.record import KEY_TAG  # noqa: E402

EPOCHS = 40


MODES = ("in-process", "follower")


def live_job(data_root: Path, out: Path, uri: str, seed: int, *extra: str, mode: str = "in-process") -> list[str]:
    """`mebqat run` of a dedicated (2,2) job of EPOCHS epochs, its run written to ``uri`` in ``mode``."""
    extra = ("--train-task", "(2,2)", "--seed", str(seed), "--set", f"train.epochs={EPOCHS}", *extra)
    return job_args(data_root, out, "svhn_cnn8", "qat", *extra, "--uri", uri, "--tracking", mode, command="run")


def eventually(check, timeout: float = 120.0):
    """``check()``'s first truthy value: a follower writes the store a moment after the job's files."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def start(args: list[str]) -> subprocess.Popen:
    """`mebqat ARGS`, started."""
    return subprocess.Popen(
        [*MEBQAT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=one_thread_env()
    )


def job_runs(client: MlflowClient, seed: int) -> list:
    experiment = client.get_experiment_by_name("table2")
    if experiment is None:
        return []
    return [r for r in client.search_runs([experiment.experiment_id], filter_string=f"tags.`mebqat.seed` = '{seed}'")]


def wait_until_training(client: MlflowClient, seed: int, process: subprocess.Popen, epochs: int = 3):
    """The job's run once it is RUNNING with at least ``epochs`` epochs logged."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        runs = job_runs(client, seed)
        if (
            runs
            and runs[0].info.status == "RUNNING"
            and len(client.get_metric_history(runs[0].info.run_id, HISTORY_PROBE)) >= epochs
        ):
            return runs[0]
        time.sleep(0.2)
    raise AssertionError("the job's run never showed RUNNING with its first epochs")


def assert_one_finished_run(client: MlflowClient, seed: int, run_id: str) -> None:
    eventually(lambda: [r.info.status for r in job_runs(client, seed)] == ["FINISHED"])
    runs = job_runs(client, seed)
    assert [r.info.run_id for r in runs] == [run_id], "the resumed job continues the same run, and only it"
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, HISTORY_PROBE)]
    assert sorted(steps) == list(range(1, EPOCHS + 1)), "every epoch's curve point exactly once"
    assert run.info.end_time - run.info.start_time > 1000, "the run spans the job's real time (ms)"
    assert "test/acc_2bit" in run.data.metrics and run.data.tags[KEY_TAG]  # the results, as `track log` writes them


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(uri)


@pytest.fixture(params=MODES)
def mode(request, tmp_path, store):
    """How the job's run is written; for ``follower``, a follower watching tmp_path for the whole test."""
    if request.param == "in-process":
        yield request.param
        return
    follower = subprocess.Popen(
        [*MEBQAT, "track", "follow", str(tmp_path), "--uri", store[0], "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield request.param
    follower.terminate()
    _, errors = follower.communicate(timeout=120)
    assert follower.returncode == 0, errors


def status_of(client: MlflowClient, run_id: str, status: str):
    return eventually(lambda: client.get_run(run_id).info.status == status and client.get_run(run_id))


def test_a_cancelled_job_is_killed_and_its_resumed_job_finishes_the_same_run(data_root, tmp_path, store, mode):
    uri, client = store
    out = tmp_path / "run"
    process = start(live_job(data_root, out, uri, seed=0, mode=mode))
    running = wait_until_training(client, 0, process)
    assert running.info.start_time > 0 and running.data.params  # opened when the job started, config logged
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    assert process.returncode != 0
    stopped = status_of(client, running.info.run_id, "KILLED")
    assert stopped and stopped.data.tags["mebqat.end_reason"].startswith("killed by SIGTERM after epoch ")
    resumed = mebqat(*live_job(data_root, out, uri, seed=0, mode=mode), timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    log = (out / "train.log").read_text()
    assert "resuming" in log
    assert "stopped: killed by SIGTERM" in log and "Stopped: 143" not in log  # the signal's name, not an exit status
    assert_one_finished_run(client, 0, running.info.run_id)
    finished = client.get_run(running.info.run_id).data.tags
    assert "mebqat.end_reason" not in finished, "a finished run carries no stop reason"
    assert re.fullmatch(
        r"killed by SIGTERM after epoch \d+ of \d+; resumed (\d+ min )?\d+ s later \(the run's Duration includes "
        r"this downtime\)",
        finished["mebqat.interruptions"],
    ), finished["mebqat.interruptions"]
    # the directory stays the source of truth: logging it again afterwards changes nothing
    logged = mebqat("track", "log", str(out), "--uri", uri, timeout=300)
    assert logged.returncode == 0, logged.stderr
    assert_one_finished_run(client, 0, running.info.run_id)


def test_a_job_killed_with_sigkill_resumes_into_the_same_run(data_root, tmp_path, store, mode):
    uri, client = store
    out = tmp_path / "run"
    process = start(live_job(data_root, out, uri, seed=1, mode=mode))
    running = wait_until_training(client, 1, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert client.get_run(running.info.run_id).info.status == "RUNNING"  # nothing could mark it
    resumed = mebqat(*live_job(data_root, out, uri, seed=1, mode=mode), timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert_one_finished_run(client, 1, running.info.run_id)


def test_a_failing_job_ends_its_run_failed_with_the_reason(data_root, tmp_path, store, mode):
    uri, client = store
    done = mebqat(*live_job(data_root, tmp_path / "run", uri, 2, "--set", "train.optimizer.lr=1e30", mode=mode))
    assert done.returncode != 0 and "no metrics are written" in done.stderr.splitlines()[-1], done.stderr
    eventually(lambda: [r.info.status for r in job_runs(client, 2)] == ["FAILED"])
    (run,) = job_runs(client, 2)
    assert run.info.status == "FAILED" and "Divergence" in run.data.tags["mebqat.end_reason"]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_an_epoch_in_the_history_but_not_yet_checkpointed_is_logged_once(data_root, tmp_path, store, monkeypatch):
    """A kill between an epoch's history line and its checkpoint: the resumed job trains that epoch again,
    and its curve point must not also be caught up from the history it is about to truncate."""
    from mebqat.core.config import resolve_job
    from mebqat.engine.job import run_job
    from mebqat.engine.rundir import RunDir

    uri, client = store
    epochs = 3
    config = resolve_job(
        {
            "setup": "svhn_cnn8",
            "method": "qat",
            "train_task": "(2,2)",
            "scale": "smoke",
            "seed": 5,
            "overrides": {"train": {"epochs": epochs}, "data": {"root": str(data_root)}},
        }
    )
    out = tmp_path / "job"
    save = RunDir.save_checkpoint

    def killed_before_the_second_checkpoint(self, path, state):
        if path == self.last and state["epoch"] == 2:
            raise KeyboardInterrupt("killed")
        save(self, path, state)

    monkeypatch.setattr(RunDir, "save_checkpoint", killed_before_the_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_job(config, out, threads=1, uri=uri)
    assert [r["epoch"] for r in RunDir(out).read_history()] == [1, 2]  # the state a kill there leaves
    monkeypatch.setattr(RunDir, "save_checkpoint", save)
    run_job(config, out, threads=1, uri=uri)
    (run,) = job_runs(client, 5)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, HISTORY_PROBE)]
    assert run.info.status == "FINISHED" and sorted(steps) == list(range(1, epochs + 1))
