"""`mebqat track init / log / tables` end to end, in a temporary working directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mebqat_cli import mebqat, one_thread_env
from mlflow import MlflowClient
from tracking_runs import assert_run_matches, write_run

from mebqat.cli import build_parser

BROWSE = "browse the runs with: mebqat track ui"


def track(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`mebqat track ARGS` in ``cwd``, with no $MLFLOW_TRACKING_URI."""
    env = {k: v for k, v in one_thread_env().items() if k != "MLFLOW_TRACKING_URI"}
    return mebqat("track", *args, cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize("action", ["init", "log", "tables"])
def test_every_track_action_has_help(action, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["track", action, "--help"])
    assert exit_.value.code == 0
    assert f"usage: mebqat track {action}" in capsys.readouterr().out


def test_track_end_to_end(tmp_path):
    runs = tmp_path / "results" / "runs"
    first, second = write_run(runs / "a"), write_run(runs / "b", "pn_omniglot_20w5s", "pn", epochs=2)
    unfinished = write_run(runs / "c", seed=7)
    (unfinished / "metrics.json").unlink()

    init = track(tmp_path, "init")
    assert init.returncode == 0, init.stderr
    assert "created" in init.stdout and BROWSE in init.stdout

    logged = track(tmp_path, "log", "results/runs/a", "results/runs/c", "results/runs/b")
    assert logged.returncode == 2  # one directory was refused; the others are logged all the same
    assert "results/runs/c is not finished (no metrics.json)" in logged.stderr and "Traceback" not in logged.stderr
    assert logged.stdout.count(": created: experiment") == 2 and BROWSE in logged.stdout

    tables = tmp_path / "results" / "tables"
    tables.mkdir()
    (tables / "table5.csv").write_text("table,accuracy\ntable5,1.0\n")
    (tables / "table5.md").write_text("| accuracy |\n")
    published = track(tmp_path, "tables", "results/tables")
    assert published.returncode == 0, published.stderr
    assert ": created: experiment table5" in published.stdout

    client = MlflowClient(f"sqlite:///{tmp_path}/results/mlflow.db")
    assert_run_matches(client, first)
    assert_run_matches(client, second)
    table5 = client.get_experiment_by_name("table5").experiment_id
    assert len(client.search_runs([table5], "tags.`mebqat.kind` = 'tables'")) == 1
    assert len(client.search_runs([table5], "tags.`mebqat.kind` = 'job'")) == 1
    assert (
        client.search_runs([client.get_experiment_by_name("table2").experiment_id], "tags.`mebqat.seed` = '7'") == []
    )  # the unfinished job left no trace
    assert (tmp_path / "results" / "mlartifacts" / "table5").is_dir() and not (tmp_path / "mlruns").exists()


def test_track_bad_uri_is_a_clear_error(tmp_path):
    result = track(tmp_path, "init", "--uri", "./mlruns")
    assert result.returncode == 2
    assert "refuses file stores" in result.stderr and "Traceback" not in result.stderr


def test_init_wait_is_bounded_and_checked(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    waited = track(tmp_path, "init", "--wait", "1", "--uri", f"http://127.0.0.1:{closed}")
    assert waited.returncode != 0
    assert f"waiting up to 1 s for MLflow server http://127.0.0.1:{closed}" in waited.stderr
    assert "does not answer after 1 s" in waited.stderr and "Traceback" not in waited.stderr
    bad = track(tmp_path, "init", "--wait", "-5")
    assert bad.returncode != 0 and "--wait must be a number of seconds >= 0, got -5.0" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
