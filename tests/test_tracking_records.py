"""Tracking without a store: store URIs, reading a run directory, and the record built from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tracking_runs import leaves, write_run

from mebqat.tracking import DEFAULT_URI, TrackingError, init_store, resolve_uri
from mebqat.tracking.finished_run import read_finished_run
from mebqat.tracking.jobrecord import job_record
from mebqat.tracking.table_runs import collect_tables
from mebqat.tracking.uri import artifact_root, browse_hint


def test_uri_default_env_and_argument(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert DEFAULT_URI == "sqlite:///results/mlflow.db"
    assert resolve_uri() == f"sqlite:///{tmp_path}/results/mlflow.db"  # absolute: sqlite:////tmp/...
    assert artifact_root(resolve_uri()) == tmp_path / "results" / "mlartifacts"
    assert browse_hint(resolve_uri()) == "browse the runs with: mebqat track ui"
    assert (
        browse_hint(resolve_uri("sqlite:///other/y.db"))
        == "browse the runs with: mebqat track ui --uri sqlite:///other/y.db"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///other/x.db")
    assert resolve_uri() == f"sqlite:///{tmp_path}/other/x.db"
    assert resolve_uri("http://localhost:5000") == "http://localhost:5000"  # the argument beats the variable


@pytest.mark.parametrize(
    "uri, message",
    [
        ("./mlruns", "refuses file stores"),
        ("file:///tmp/mlruns", "refuses file stores"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "names no file"),
    ],
)
def test_unusable_uris_are_refused(uri, message):
    with pytest.raises(TrackingError, match=message):
        resolve_uri(uri)


def test_importing_the_package_does_not_import_mlflow():
    code = "import sys, mebqat.tracking, mebqat.cli; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_record_mirrors_the_files(tmp_path):
    run_dir = write_run(tmp_path / "run", setup="svhn_cnn8", method="qat", train_task="(4,4)", seed=3, epochs=3)
    record = job_record(read_finished_run(run_dir))
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert record.experiment == "table2"
    assert record.run_name == "svhn_cnn8 · qat · (4,4) · seed3"  # short: the UI's runs table cuts names
    assert record.run_key == metrics["provenance"]["config_hash"]
    assert record.params["train.optimizer.lr"] == json.dumps(config["train"]["optimizer"]["lr"])
    assert record.params["job.train_task"] == "(4,4)" and record.params["job.seed"] == "3"
    assert len(record.params) == len(list(leaves(config)))
    points = {(m.key, m.step): m.value for m in record.metrics}
    own = next(r["accuracy"] for r in metrics["results"] if (r["bits_w"], r["bits_a"]) == (4, 4))
    assert points[("test/acc_trained_task", 0)] == round(own, 2)
    assert not [key for key, _ in points if key.startswith(("acc_w", "ci95_", "n_w"))]
    assert record.tags["mebqat.task"] == "(4,4)"
    assert (
        points[("curves/train_loss", 2)]
        == json.loads((run_dir / "history.jsonl").read_text().splitlines()[1])["train_loss"]
    )
    assert points[("best", 1)] == 1.0 and points[("best", 2)] == 0.0
    assert ("select_split", 1) not in points  # a string: not a metric
    assert points[("stored_parameters", 0)] == 1234 and points[("forward_passes", 0)] == 42
    assert record.tags["mebqat.train_task"] == "(4,4)" and record.tags["mebqat.git_dirty"] == "false"
    assert record.tags["mlflow.source.git.commit"] == metrics["provenance"]["git_commit"]
    assert {a.path.name for a in record.artifacts} == {
        "metrics.json",
        "config.yaml",
        "train.log",
        "train_summary.json",
        "history.jsonl",
    }
    before = record.content_hash()
    assert before == job_record(read_finished_run(run_dir)).content_hash()
    (run_dir / "train.log").write_text("another log\n")
    assert job_record(read_finished_run(run_dir)).content_hash() != before


def test_fewshot_record_has_the_episode_file_and_task_count(tmp_path):
    run_dir = write_run(tmp_path / "run", setup="pn_omniglot_20w1s", method="mebqat_pn")
    record = job_record(read_finished_run(run_dir))
    assert record.experiment == "table5"
    assert "episode_accuracies.npz" in {a.path.name for a in record.artifacts}
    assert {(m.key, m.value) for m in record.metrics} >= {("test_tasks_count", 6.0), ("test_tasks_queries", 2.0)}
    assert record.tags["mebqat.ways"] == "20" and record.tags["mebqat.shots"] == "1"


def test_unfinished_or_inconsistent_directories_are_refused(tmp_path):
    run_dir = write_run(tmp_path / "run")
    (run_dir / "metrics.json").rename(tmp_path / "metrics.json")
    with pytest.raises(TrackingError, match="is not finished \\(no metrics.json\\).*mebqat evaluate"):
        read_finished_run(run_dir)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    metrics["provenance"]["config_hash"] = "0000000000000000"
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(TrackingError, match="metrics.json was written for configuration 0000000000000000"):
        read_finished_run(run_dir)
    del metrics["costs"]
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(TrackingError, match="does not follow its schema at \\(top level\\): 'costs' is a required"):
        read_finished_run(run_dir)
    (run_dir / "metrics.json").write_text("{not json")
    with pytest.raises(TrackingError, match="metrics.json is not valid JSON"):
        read_finished_run(run_dir)
    with pytest.raises(TrackingError, match="not a run directory \\(no config.yaml\\)"):
        read_finished_run(tmp_path)


def test_tables_and_figures_are_grouped_by_table(tmp_path):
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    tables.mkdir(), figures.mkdir()
    for name in ("table2.csv", "table2.md", "table2.tex", "table4.csv", "notes.txt"):
        (tables / name).write_text(name)
    for name in (
        "costs_table3.png",
        "accuracy_table4_maml_omniglot_20w1s.png",
        "svhn_cnn8.png",
        "overview.pdf",
        "readme.txt",
    ):
        (figures / name).write_text(name)
    grouped = {
        t: sorted(f"{a.directory}/{a.path.name}" for a in arts) for t, arts in collect_tables(tables, figures).items()
    }
    assert grouped == {
        "table2": [
            "figures/overview.pdf",
            "figures/svhn_cnn8.png",
            "tables/table2.csv",
            "tables/table2.md",
            "tables/table2.tex",
        ],
        "table3": ["figures/costs_table3.png"],  # the names the table build writes
        "table4": ["figures/accuracy_table4_maml_omniglot_20w1s.png", "figures/overview.pdf", "tables/table4.csv"],
    }
    with pytest.raises(TrackingError, match="no table files"):
        collect_tables(figures)
    with pytest.raises(TrackingError, match="does not exist"):
        collect_tables(tmp_path / "missing")


def test_too_long_param_is_a_clear_error(tmp_path):
    run_dir = write_run(tmp_path / "run")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["data"]["root"] = "x" * 7000  # volatile: the config hash stays the same
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(TrackingError, match="param 'data.root' is 7000 characters long"):
        job_record(read_finished_run(run_dir))


def test_missing_run_dir(tmp_path: Path):
    with pytest.raises(TrackingError, match="is not a directory"):
        read_finished_run(tmp_path / "nope")


def test_transient_store_errors_are_retried_and_others_are_not(monkeypatch):
    from mebqat.tracking import retry

    monkeypatch.setattr(retry.time, "sleep", lambda seconds: None)
    attempts = []

    def locked_twice() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "done"

    assert retry.retrying(locked_twice) == "done" and len(attempts) == 3
    # log_inputs' check-then-insert race (two jobs of one experiment logging one dataset first): the
    # message CI saw; the retry finds the other job's row.
    lost_race = (
        "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, "
        "datasets.digest\n[SQL: INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, ..."
    )
    attempts.clear()

    def raced_once() -> str:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError(lost_race)
        return "linked"

    assert retry.retrying(raced_once) == "linked" and len(attempts) == 2
    with pytest.raises(RuntimeError, match="UNIQUE constraint failed: runs"):  # any other conflict is a bug
        retry.retrying(
            lambda: (_ for _ in ()).throw(
                RuntimeError("(sqlite3.IntegrityError) UNIQUE constraint failed: runs.run_uuid")
            )
        )
    with pytest.raises(RuntimeError, match="no such table"):
        retry.retrying(lambda: (_ for _ in ()).throw(RuntimeError("(sqlite3.OperationalError) no such table: runs")))
    with pytest.raises(RuntimeError, match="locked"):
        retry.retrying(lambda: (_ for _ in ()).throw(RuntimeError("database is locked")), attempts=2)


def test_init_checks_that_a_tracking_server_answers():
    """/health alone is not enough: MLflow's host check answers it to any Host header but refuses the API
    (403) to a host name missing from the server's --allowed-hosts, which would fail every job at its end."""
    import http.server
    import socket
    import threading

    class Server(http.server.BaseHTTPRequestHandler):
        api_status = 200

        def do_GET(self):  # noqa: N802 (http.server's naming)
            api = self.path.startswith("/api/2.0/mlflow/experiments/search")
            self.send_response(200 if self.path == "/health" else self.api_status if api else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Server)  # an ephemeral port, in a thread of this test
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status = init_store(uri)
        assert "answers" in status.message and not status.created
        Server.api_status = 403
        with pytest.raises(TrackingError, match=rf"HTTP 403.*--allowed-hosts 127\.0\.0\.1:{server.server_address[1]}"):
            init_store(uri)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(TrackingError, match="does not answer.*unset MLFLOW_TRACKING_URI"):
        init_store(f"http://127.0.0.1:{closed}")


def test_init_waits_for_a_tracking_server_that_is_starting():
    """`--wait`: a server that starts listening 2 s later is waited for; one that never does is an error after
    the wait that says how to wait longer."""
    import http.server
    import socket
    import threading
    import time

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    servers = []

    def start_late():
        time.sleep(2)
        servers.append(http.server.HTTPServer(("127.0.0.1", port), Health))
        servers[0].serve_forever()

    thread = threading.Thread(target=start_late, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(TrackingError, match="does not answer"):
            init_store(f"http://127.0.0.1:{port}")  # no wait: at once
        assert "answers" in init_store(f"http://127.0.0.1:{port}", wait_s=60).message
        assert 1.5 < time.monotonic() - started < 30
    finally:
        while not servers and thread.is_alive():
            time.sleep(0.1)
        servers[0].shutdown()
        servers[0].server_close()
        thread.join()
    started = time.monotonic()
    with pytest.raises(TrackingError, match=r"does not answer after 1 s .*--wait SECONDS"):
        init_store(f"http://127.0.0.1:{port}", wait_s=1)
    assert time.monotonic() - started < 15
