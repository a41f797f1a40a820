"""The follower (`mebqat track follow`) writes a job's MLflow run from its files only: a finished directory
once (a second pass changes nothing, and `track log` finds it complete), at the job's own start time; a
running one up to its last durable epoch, never a half-written history line; a bad root is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mebqat_cli import job_args, mebqat

pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

from mebqat.core.jobstatus import JobStatus, read_status, write_status  # noqa: E402
from mebqat.tracking.follow import MARKER, Follower  # noqa: E402
from mebqat.tracking.live import HISTORY_PROBE  # noqa: E402


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_root) -> Path:
    out = tmp_path_factory.mktemp("follow") / "runs" / "job"
    extra = ["--train-task", "(2,2)", "--set", "train.epochs=3", "--tracking", "follower"]
    done = mebqat(*job_args(data_root, out, "svhn_cnn8", "qat", *extra, command="run"))
    assert done.returncode == 0, done.stderr
    return out


def table2_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("table2")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def test_a_finished_job_is_logged_once_at_its_own_times(finished, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(finished, root / "job")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    assert mebqat("track", "follow", str(root), "--once", "--uri", uri).returncode == 0
    status = read_status(root / "job")
    (run,) = table2_runs(client)
    assert run.info.status == "FINISHED"
    assert (run.info.start_time, run.info.end_time) == (status.started_ms, status.ended_ms)
    assert [m.step for m in client.get_metric_history(run.info.run_id, HISTORY_PROBE)] == [1, 2, 3]
    assert (root / "job" / MARKER).read_text().strip() == status.attempt
    again = mebqat("track", "follow", str(root), "--once", "--uri", uri)
    assert again.returncode == 0 and [r.info.run_id for r in table2_runs(client)] == [run.info.run_id]
    assert len(client.get_metric_history(run.info.run_id, HISTORY_PROBE)) == 3
    logged = mebqat("track", "log", str(root / "job"), "--uri", uri)
    assert logged.returncode == 0 and "unchanged" in logged.stdout, logged.stdout + logged.stderr


def test_a_store_deleted_since_is_filled_again(finished, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(finished, root / "job")
    store = tmp_path / "mlflow.db"
    uri = f"sqlite:///{store}"
    assert mebqat("track", "follow", str(root), "--once", "--uri", uri).returncode == 0
    assert (root / "job" / MARKER).is_file()
    store.unlink()  # a researcher starting over with a fresh store; the job directories stay
    again = mebqat("track", "follow", str(root), "--once", "--uri", uri)
    assert again.returncode == 0, again.stderr
    (run,) = table2_runs(MlflowClient(uri))
    assert run.info.status == "FINISHED"
    assert [m.step for m in MlflowClient(uri).get_metric_history(run.info.run_id, HISTORY_PROBE)] == [1, 2, 3]


def test_a_running_job_is_followed_up_to_its_last_durable_epoch(finished, tmp_path):
    root = tmp_path / "runs"
    job = root / "job"
    shutil.copytree(finished, job)
    (job / "metrics.json").unlink()
    write_status(job, JobStatus.begin(resuming=False, tracking="follower").at_epoch(1))
    with open(job / "history.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "train_lo')  # the job is appending this line right now
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    follower = Follower(root, uri)
    assert follower.sweep() == 0
    (run,) = table2_runs(client)
    assert run.info.status == "RUNNING"
    assert [m.step for m in client.get_metric_history(run.info.run_id, HISTORY_PROBE)] == [1]
    status = read_status(job)
    write_status(job, status.at_epoch(3).ended("killed", "killed by SIGTERM after epoch 3 of 4"))
    assert follower.sweep() == 0
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED" and run.data.tags["mebqat.end_reason"] == "killed by SIGTERM after epoch 3 of 4"
    assert [m.step for m in client.get_metric_history(run.info.run_id, HISTORY_PROBE)] == [1, 2, 3]
    assert not (job / MARKER).exists()


def test_a_job_that_logs_itself_is_left_alone(finished, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(finished, root / "job")
    status = json.loads((root / "job" / "job_status.json").read_text())
    (root / "job" / "job_status.json").write_text(json.dumps({**status, "tracking": "in-process"}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert Follower(root, uri).sweep() == 0
    assert table2_runs(MlflowClient(uri)) == []


def test_a_root_that_is_not_a_directory_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    done = mebqat("track", "follow", str(tmp_path / "file"), "--once", "--uri", f"sqlite:///{tmp_path / 'm.db'}")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "is not a directory" in done.stderr and not (tmp_path / "m.db").exists()


def test_the_final_pass_logs_the_given_directories_and_refuses_an_unfinished_one(finished, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(finished, root / "old")
    (root / "old" / "job_status.json").unlink()  # a directory of a version before job_status.json
    shutil.copytree(finished, root / "unfinished")
    (root / "unfinished" / "metrics.json").unlink()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    refused = mebqat("track", "follow", str(root), "--uri", uri, "--once", str(root / "old"), str(root / "unfinished"))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "unfinished: no metrics.json" in refused.stderr and not (tmp_path / "mlflow.db").exists()
    done = mebqat("track", "follow", str(root), "--uri", uri, "--once", str(root / "old"))
    assert done.returncode == 0, done.stderr
    assert [r.info.status for r in table2_runs(MlflowClient(uri))] == ["FINISHED"]
