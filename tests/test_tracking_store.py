"""Logging into a real SQLite MLflow store: contents, idempotency, replacement, init, MLFLOW_TRACKING_URI."""

from __future__ import annotations

import json
import shutil

import pytest
from mlflow import MlflowClient
from tracking_runs import assert_run_matches, find_runs, write_run

from mebqat.tracking import TrackingError, init_store, log_run, log_tables
from mebqat.tracking.record import KEY_TAG


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An initialised, empty store file: creating one runs MLflow's migrations (about 7 s), copying it does not."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    status = init_store(f"sqlite:///{path}")
    assert status.created and path.exists()
    return path


@pytest.fixture
def store(tmp_path, monkeypatch, empty_store):
    """An empty store at the default location, relative to a temporary working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "results").mkdir()
    shutil.copy(empty_store, tmp_path / "results" / "mlflow.db")
    return MlflowClient(f"sqlite:///{tmp_path}/results/mlflow.db")


def active_runs(client: MlflowClient, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def test_init_creates_once_then_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = init_store()
    assert first.created and "created" in first.message
    before = (tmp_path / "results" / "mlflow.db").read_bytes()
    again = init_store()
    assert not again.created and "already initialised" in again.message
    assert "browse the runs with: mebqat track ui" in again.message
    assert (tmp_path / "results" / "mlflow.db").read_bytes() == before
    default = MlflowClient(f"sqlite:///{tmp_path}/results/mlflow.db").search_experiments()[0]
    assert default.artifact_location.startswith(f"{tmp_path}/results/mlartifacts")  # not a hidden ./mlruns
    assert not (tmp_path / "mlruns").exists()


def test_logged_run_holds_the_files(store, tmp_path):
    run_dir = write_run(tmp_path / "runs" / "a", setup="maml_omniglot_20w1s", method="mebqat_maml", epochs=5)
    result = log_run(run_dir)
    assert result.action == "created"
    run = assert_run_matches(store, run_dir)
    assert run.info.run_id == result.run_id and run.info.run_name == "maml_omniglot_20w1s · mebqat_maml · seed0"
    experiment = store.get_experiment(run.info.experiment_id)
    assert experiment.name == "table4"
    assert "Table 4 of the paper" in experiment.tags["mlflow.note.content"]  # the UI's experiment description
    assert "maml_omniglot_20w1s" in experiment.tags["mlflow.note.content"]
    view = json.loads(experiment.tags["mlflow.sharedViewState.mebqat-runs"])  # the runs table's columns
    assert {"tags.`mebqat.method`", "tags.`mebqat.task`", "metrics.`test/acc_FP`"} <= set(view["selectedColumns"])
    assert experiment.artifact_location == (tmp_path / "results" / "mlartifacts" / "table4").as_uri()
    local = store.download_artifacts(run.info.run_id, "metrics.json", str(tmp_path / "download"))
    assert json.loads(open(local).read()) == json.loads((run_dir / "metrics.json").read_text())
    assert not (tmp_path / "mlruns").exists()


def test_relogging_does_not_duplicate_and_a_rerun_replaces(store, tmp_path):
    run_dir = write_run(tmp_path / "runs" / "a")
    first = log_run(run_dir)
    again = log_run(run_dir)
    assert (again.action, again.run_id) == ("unchanged", first.run_id)
    assert len(active_runs(store, "table2")) == 1
    write_run(run_dir, variant=1)  # the same job re-run: same config, other numbers
    rerun = log_run(run_dir)
    assert rerun.action == "replaced" and rerun.run_id != first.run_id and rerun.deleted == (first.run_id,)
    assert len(active_runs(store, "table2")) == 1
    assert_run_matches(store, run_dir)  # one point per epoch: the old curve did not stay


def test_a_changed_config_is_a_new_run_and_the_old_one_stays(store, tmp_path):
    run_dir = write_run(tmp_path / "runs" / "a")
    old_files = write_run(tmp_path / "copy")
    first = log_run(run_dir)
    write_run(run_dir, overrides={"train": {"epochs": 3}})
    second = log_run(run_dir)
    assert second.action == "created" and second.run_key != first.run_key
    assert {r.info.run_id for r in active_runs(store, "table2")} == {first.run_id, second.run_id}
    assert_run_matches(store, run_dir)
    assert_run_matches(store, old_files)  # the other job's run is untouched


def test_unfinished_run_logs_nothing(store, tmp_path):
    run_dir = write_run(tmp_path / "runs" / "a")
    (run_dir / "metrics.json").unlink()
    with pytest.raises(TrackingError, match="not finished"):
        log_run(run_dir)
    assert store.get_experiment_by_name("table2") is None
    assert store.search_runs([e.experiment_id for e in store.search_experiments()]) == []


def test_a_run_left_running_by_a_killed_logger_is_replaced(store, tmp_path):
    run_dir = write_run(tmp_path / "runs" / "a")
    key = json.loads((run_dir / "metrics.json").read_text())["provenance"]["config_hash"]
    experiment = store.create_experiment("table2")
    stale = store.create_run(experiment, tags={KEY_TAG: key})  # half-written, never terminated
    result = log_run(run_dir)
    assert result.action == "replaced" and result.deleted == (stale.info.run_id,)
    assert store.get_run(stale.info.run_id).info.lifecycle_stage == "deleted"
    assert_run_matches(store, run_dir)


def test_mlflow_tracking_uri_is_honoured(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere/other.db")
    run_dir = write_run(tmp_path / "runs" / "a")
    log_run(run_dir)  # no init: the store is created (under the lock) on first use
    other = MlflowClient(f"sqlite:///{tmp_path}/elsewhere/other.db")
    assert_run_matches(other, run_dir)
    assert find_runs(store, run_dir) == []
    assert (tmp_path / "elsewhere" / "mlartifacts" / "table2").is_dir()


def test_deleted_experiment_is_a_clear_error(store, tmp_path):
    store.delete_experiment(store.create_experiment("table2"))
    with pytest.raises(TrackingError, match="experiment 'table2' is deleted in the store"):
        log_run(write_run(tmp_path / "runs" / "a"))


def test_tables_run_per_experiment_is_idempotent(store, tmp_path):
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    tables.mkdir(), figures.mkdir()
    for name in ("table2.csv", "table2.md", "table4.tex"):
        (tables / name).write_text(f"{name} v1\n")
    (figures / "table2_accuracy.png").write_bytes(b"png")
    first = {r.experiment: r for r in log_tables(tables, figures)}
    assert {e: r.action for e, r in first.items()} == {"table2": "created", "table4": "created"}
    run = store.get_run(first["table2"].run_id)
    assert run.info.run_name == "tables" and run.data.tags["mebqat.kind"] == "tables"
    listed = {a.path for d in ("tables", "figures") for a in store.list_artifacts(run.info.run_id, d)}
    assert listed == {"tables/table2.csv", "tables/table2.md", "figures/table2_accuracy.png"}
    assert {r.action for r in log_tables(tables, figures)} == {"unchanged"}
    (tables / "table2.csv").write_text("table2.csv v2\n")
    second = {r.experiment: r for r in log_tables(tables, figures)}
    assert (second["table2"].action, second["table4"].action) == ("replaced", "unchanged")
    assert len(active_runs(store, "table2")) == 1
    local = store.download_artifacts(second["table2"].run_id, "tables/table2.csv", str(tmp_path / "dl"))
    assert open(local).read() == "table2.csv v2\n"


def built_tables(folder, scale: str, fidelity: str = "official", accuracy: float = 10.0):
    """A tables folder as `mebqat tables build` writes it, as far as the tables runs read it."""
    folder.mkdir(parents=True)
    (folder / "table5.csv").write_text(
        f"table,setup,scale,fidelity,accuracy\ntable5,pn_omniglot_20w1s,{scale},{fidelity},{accuracy}\n"
    )
    (folder / "table5.md").write_text(f"# Table 5 ({scale})\n")
    return folder


def test_tables_runs_of_other_scales_and_folders_coexist_and_each_replaces_only_itself(store, tmp_path):
    smoke = built_tables(tmp_path / "results" / "smoke" / "tables", "smoke")
    mini = built_tables(tmp_path / "results" / "tables", "mini")
    corrected = built_tables(tmp_path / "results" / "corrected" / "tables", "mini", "corrected")
    copy = built_tables(tmp_path / "elsewhere" / "tables", "mini")  # same scale, another results folder
    first = {folder: log_tables(folder)[0] for folder in (smoke, mini, corrected, copy)}
    assert {r.action for r in first.values()} == {"created"} and len({r.run_key for r in first.values()}) == 4
    assert first[smoke].run_key.startswith("tables/smoke-official/")
    assert first[corrected].run_key.startswith("tables/mini-corrected/")
    runs = {run.info.run_id: run for run in active_runs(store, "table5")}
    assert set(runs) == {r.run_id for r in first.values()}
    smoke_run = runs[first[smoke].run_id]
    assert smoke_run.info.run_name == "tables · smoke-official"
    assert smoke_run.data.tags["mebqat.scale"] == "smoke" and smoke_run.data.tags["mebqat.fidelity"] == "official"
    assert smoke_run.data.tags["mebqat.tables_dir"] == str(smoke)
    # the same folder again: unchanged, or replaced when its tables changed, and the others stay
    assert log_tables(mini)[0].action == "unchanged"
    (mini / "table5.csv").write_text("table,setup,scale,fidelity,accuracy\ntable5,x,mini,official,11.0\n")
    again = log_tables(mini)[0]
    assert again.action == "replaced" and again.deleted == (first[mini].run_id,)
    after = {run.info.run_id for run in active_runs(store, "table5")}
    assert after == {first[smoke].run_id, first[corrected].run_id, first[copy].run_id, again.run_id}


def test_a_tables_run_of_the_older_key_is_replaced_by_its_folder_only(store, tmp_path):
    smoke = built_tables(tmp_path / "results" / "smoke" / "tables", "smoke")
    other = tmp_path / "results" / "tables"
    experiment = store.create_experiment("table5")
    old = {
        folder: store.create_run(experiment, tags={KEY_TAG: "tables", "mebqat.tables_dir": str(folder)}).info.run_id
        for folder in (smoke, other)
    }
    (result,) = log_tables(smoke)
    assert result.action == "created" and result.deleted == (old[smoke],)
    assert {run.info.run_id for run in active_runs(store, "table5")} == {result.run_id, old[other]}


def test_tables_run_says_the_claims_verdicts(store, tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "table3.md").write_text("table3\n")
    claims = tmp_path / "claims.csv"
    head = "claim,table,setup,method,statistic,worst_row,ours,ci95_low,ci95_high,verdict,reason\n"
    claims.write_text(
        head + "t3-storage,table3,svhn_cnn8,mebqat,storage_saving,,0.986667,0.986667,0.986667,holds,\n"
        "t3-backprops,table3,svhn_cnn8,mebqat,backprop_saving,,,,,not measured,no run for svhn_cnn8/qat\n"
        't2-usable,table2,svhn_cnn8,mebqat,accuracy,"(2,2)",8.9,5.9,11.8,fails,\n'
    )
    (result,) = log_tables(tables, claims=(claims,))
    run = store.get_run(result.run_id)
    assert store.get_experiment(run.info.experiment_id).name == "table3"
    assert {k: v for k, v in run.data.metrics.items() if k.startswith("claims/")} == {
        "claims/holds": 1.0,
        "claims/fails": 0.0,
        "claims/not_measured": 1.0,
    }  # table3's checks only
    assert run.data.tags["claims.t3-storage.svhn_cnn8.mebqat"] == "holds: storage_saving 98.67%"
    assert run.data.tags["claims.t3-backprops.svhn_cnn8.mebqat"] == "not measured: no run for svhn_cnn8/qat"
    assert "t2-usable" not in str(run.data.tags)
    assert "1 hold, 0 fail, 1 not measured (all tables: 1 of 3 hold)" in run.data.tags["mlflow.note.content"]
    assert {a.path for a in store.list_artifacts(run.info.run_id, "claims")} == {"claims/claims.csv"}


def test_two_loggers_of_one_job_leave_one_run(store, tmp_path, monkeypatch):
    """Interleavings of two concurrent loggers of the same job, made deterministic."""
    from mebqat.tracking import publish as publish_module

    run_dir = write_run(tmp_path / "runs" / "a")
    write = publish_module._write
    calls = []

    def write_while_another_logger_runs(client, run_id, record):
        calls.append(run_id)
        if len(calls) == 1:  # a later-started logger completes (and deletes this run) while this one writes
            assert log_run(run_dir).action == "created"
        write(client, run_id, record)

    monkeypatch.setattr(publish_module, "_write", write_while_another_logger_runs)
    result = log_run(run_dir)
    assert result.action == "superseded" and result.run_id == calls[1]
    assert [r.info.run_id for r in active_runs(store, "table2")] == [calls[1]]
    monkeypatch.setattr(publish_module, "_write", write)

    write_run(run_dir, variant=1)  # another result of the job, logged by a logger stamped earlier than
    newer = active_runs(store, "table2")[0]  # the run already there: that one counts as the later one
    create = store.create_run
    monkeypatch.setattr(
        MlflowClient,
        "create_run",
        lambda self, *a, **kw: create(*a, **{**kw, "start_time": newer.info.start_time - 1000}),
    )
    late = log_run(run_dir)
    assert late.action == "superseded" and late.run_id == newer.info.run_id
    assert [r.info.run_id for r in active_runs(store, "table2")] == [newer.info.run_id]
