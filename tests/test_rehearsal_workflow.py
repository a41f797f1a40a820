"""The reduced rehearsal (`make rehearse` runs all 115 jobs at full dataset sizes): one setup per table at the
paper's widths, batch sizes and optimizers, through the real loaders on small synthetic files in the official
formats (3 jobs per setup: the plain method, one dedicated bitwidth, MEBQAT), every job killed after its first
epoch and resumed by the workflow's `rehearse` rule; its report names each job with its memory, time and
resume, the tables are titled as a rehearsal, no claim is judged, and each job is one FINISHED MLflow run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mebqat.data import synthetic

ROOT = Path(__file__).resolve().parents[1]
# big enough for the paper's batch sizes and episodes: SVHN keeps 6,000 images for validation and trains on
# batches of 256; a 60-way Omniglot training episode needs 16 drawings a class (1 shot + 15 queries), a 5-way
# MiniImageNet one 16 images of 5 classes. The cheapest setup of each table at the paper's widths (CIFAR-10
# loads through the same synthetic files in tests/test_data_synthetic.py; `make rehearse` runs every setup).
SIZES = {
    "svhn": {"train": 4000, "test": 300, "extra": 3000},
    "omniglot": {"drawers": 16},
    "miniimagenet": {"train": 5, "validation": 5, "test": 5, "per_class": 16},
}
SETUPS = "setups=[svhn_cnn8, maml_miniimagenet_5w1s, pn_omniglot_20w1s]"  # one per table


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("rehearsal")
    data, results = work / "data", work / "results"
    synthetic.synthesize(data, only=list(SIZES), sizes=SIZES)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "rehearsal", "--configfile", "config/rehearsal.yaml",
         "--config", f"results={results}", f"data_root={data}", SETUPS,
         "tables=[table2, table3, table4, table5]", "dedicated_tasks=['(2,2)']", "mem_mb_per_job=16000"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return results, done.stdout + done.stderr


def test_every_job_was_killed_resumed_exactly_and_reported(rehearsal):
    results, _ = rehearsal
    summaries = sorted(results.glob("runs/**/rehearsal/summary.json"))
    assert len(summaries) == 9  # 3 setups x (plain, dedicated at (2,2), MEBQAT)
    for path in summaries:
        summary = json.loads(path.read_text())
        assert summary["job"]["scale"] == "rehearsal" and summary["executions"]["killed"]["exit"] == -9
        assert summary["resume_same_state"], (path, summary["state_differs_in"])
        assert 0 < summary["peak_rss_mb"] and summary["s_per_update"] > 0 and summary["data_bytes"] > 0
        history = (path.parent.parent / "history.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in history] == [1, 2]
    frame = pd.read_csv(results / "rehearsal.csv")
    assert len(frame) == 9 and set(frame["dataset"]) == {"svhn", "omniglot", "miniimagenet"}
    report = (results / "rehearsal.md").read_text()
    assert "9 jobs rehearsed on" in report and "(9 of 9 resumed to exactly the state at the kill)" in report
    assert "Rehearsal" in (results / "report" / "summary.rst").read_text()
    assert (results / "report.html").stat().st_size > 10000


def test_the_tables_are_titled_as_a_rehearsal_and_no_claim_is_judged(rehearsal):
    results, _ = rehearsal
    for table in ("table2", "table4", "table5"):
        text = (results / "tables" / f"{table}.md").read_text()
        assert "REHEARSAL" in text.splitlines()[0], text.splitlines()[0]
        frame = pd.read_csv(results / "tables" / f"{table}.csv")
        assert frame["accuracy"].notna().any() and frame["delta"].isna().all()  # nothing compared with the paper
    claims = pd.read_csv(results / "claims.csv")
    assert len(claims) > 0 and set(claims["verdict"]) == {"not measured"}
    assert claims["reason"].str.startswith("not judged: a rehearsal").all()


def test_each_rehearsed_job_is_one_finished_mlflow_run(rehearsal):
    import mlflow

    results, _ = rehearsal
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    runs = [
        run
        for table in ("table2", "table4", "table5")
        for run in client.search_runs([client.get_experiment_by_name(table).experiment_id], max_results=100)
        if run.data.tags.get("mebqat.kind") != "tables"
    ]
    assert len(runs) == 9 and all(run.info.status == "FINISHED" for run in runs)
    assert all(run.data.tags["mebqat.scale"] == "rehearsal" for run in runs)
