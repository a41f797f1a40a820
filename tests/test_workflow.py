"""The Snakemake workflow: lint, the paper DAG without data, config validation, reruns of exactly the
affected jobs, and a smoke-scale subset end to end that touches every rule (tables, figures, MLflow
runs, report)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from output_consistency import (
    check_claims_against_tables,
    check_figures_against_tables,
    check_mlflow_against_metrics,
    check_readme_against_claims,
    check_tables_against_metrics,
)

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ENV.pop("MLFLOW_TRACKING_URI", None)


def snakemake(*args: str, cwd: Path = ROOT, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: {rule: count}."""
    block = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def test_lint_passes():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "good condition" in result.stdout + result.stderr


def test_paper_dag_lists_every_job_without_any_dataset(tmp_path):
    result = snakemake(
        "-n",
        "tables",
        "--configfile",
        "config/paper.yaml",
        "--config",
        f"results={tmp_path}",
        f"data_root={tmp_path / 'no-data'}",
    )
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["job"] == 115
    assert counts["mlflow_store"] == counts["build_tables"] == counts["track_tables"] == 1
    assert not (tmp_path / "no-data").exists()


@pytest.mark.parametrize(
    "override, key",
    [
        ("bogus_key=1", "bogus_key"),
        ("scale=huge", "scale"),
        ("seeds=zero", "seeds"),
        ("threads_per_job=0", "threads_per_job"),
        ("cluster_time_limit_minutes=0", "cluster_time_limit_minutes"),
        ("job_overrides=[1]", "job_overrides"),
    ],
)
def test_a_bad_config_stops_the_run_before_any_job(override, key, tmp_path):
    result = snakemake("-n", "tables", "--config", override, f"results={tmp_path}")
    assert result.returncode != 0
    assert "Error validating config" in result.stdout + result.stderr and key in result.stdout + result.stderr
    assert not any(tmp_path.iterdir())


def test_setups_restricts_the_dag_to_the_jobs_of_those_setups(tmp_path):
    """The same jobs (ids, hence specs and hashes) as the full paper DAG, of the named setups only."""
    common = ["-n", "tables", "--configfile", "config/paper.yaml", "--config", f"results={tmp_path}"]
    common += [f"data_root={tmp_path / 'no-data'}", "tables=[table2, table3, table5]"]
    full = snakemake(*common)
    subset = snakemake(*common, "setups=[svhn_cnn8, pn_omniglot_20w1s]")
    assert full.returncode == subset.returncode == 0, full.stderr + subset.stderr
    every = set(re.findall(r"running job (\S+)", full.stdout))
    chosen = set(re.findall(r"running job (\S+)", subset.stdout))
    assert chosen == {job for job in every if job.split("/")[2] in ("svhn_cnn8", "pn_omniglot_20w1s")}
    assert {job.split("/")[2] for job in chosen} == {"svhn_cnn8", "pn_omniglot_20w1s"} and len(chosen) < len(every)
    assert job_counts(subset.stdout)["job"] == len(chosen)
    assert job_counts(subset.stdout)["build_tables"] == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["setups=[svhn_cnn9]"], "setups: unknown setup 'svhn_cnn9'; valid names: cifar10_mobilenetv2, "),
        (["setups=[svhn_cnn8]"], "setups: none of table4's setups (maml_omniglot_20w1s, "),
        (["setups=[svhn_cnn8]", "tables=[table5]"], "setups: 'svhn_cnn8' is a table2 setup, but tables does not"),
        (["setups=[pn_omniglot_20w1s]", "tables=[table3, table5]"], "but tables builds table3, which is computed"),
        (["setups=[]"], "Error validating config: at setups:"),
    ],
)
def test_a_bad_setups_list_is_one_line_naming_the_key(overrides, message, tmp_path):
    result = snakemake("-n", "tables", "--config", f"results={tmp_path}", *overrides)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if message in line]
    assert len(lines) == 1, result.stdout + result.stderr
    if "none of" in message or "builds table3" in message:
        assert lines[0].endswith("from tables")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_config_change_reruns_exactly_the_jobs_it_affects(tmp_path, data_root):
    results = tmp_path / "results"
    targets = [
        f"{results}/runs/smoke-official/table2/svhn_cnn8/mebqat/seed0/metrics.json",
        f"{results}/runs/smoke-official/table5/pn_omniglot_20w1s/mebqat_pn/seed0/metrics.json",
    ]
    common = ["--configfile", "config/smoke.yaml", "--config", f"results={results}", f"data_root={data_root}"]
    done = snakemake(*targets, "--cores", "2", *common)
    assert done.returncode == 0, done.stderr
    unchanged = snakemake("-n", *targets, *common)
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    # a switch that only Table 2 has: its job reruns, the Table 5 job does not
    switch = tmp_path / "switch.yaml"
    switch.write_text(yaml.safe_dump({"fidelity_switches": {"per_batch_accuracy": False}}))
    changed = snakemake("-n", *targets, "--configfile", "config/smoke.yaml", str(switch), *common[2:])
    assert changed.returncode == 0, changed.stderr
    assert job_counts(changed.stdout)["job"] == 1
    rerun = re.findall(r"running job (\S+)", changed.stdout)
    assert rerun == ["smoke-official/table2/svhn_cnn8/mebqat/seed0"]
    # moving the data is not a change of any job
    moved = snakemake("-n", *targets, *common[:-1], f"data_root={tmp_path / 'elsewhere'}")
    assert "Nothing to be done" in moved.stdout + moved.stderr


SMOKE_TABLE2 = ["--configfile", "config/smoke.yaml", "tables=[table2, table3]", "dedicated_tasks=['(2,2)']"]


@pytest.fixture(scope="module")
def smoke_table2(tmp_path_factory, data_root):
    """Table 2 (+ Table 3) at smoke scale with dedicated QAT only at (2,2): 3 setups x 3 methods = 9 training
    jobs and every rule of the workflow, run once for the tests below: (results folder, what Snakemake printed)."""
    results = tmp_path_factory.mktemp("smoke") / "results"
    result = snakemake(
        "all",
        "--cores",
        "2",
        *SMOKE_TABLE2[:2],
        "--config",
        f"results={results}",
        f"data_root={data_root}",
        *SMOKE_TABLE2[2:],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return results, result.stdout + result.stderr


@pytest.mark.slow
def test_smoke_subset_end_to_end_touches_every_rule(smoke_table2, data_root):
    """3 setups x 3 methods = 9 training jobs, and every rule of the workflow (job, mlflow_store, build_tables,
    track_tables, report_pages, report)."""
    results, printed = smoke_table2
    ran = re.findall(r"^Job \d+: running job (\S+)", printed, re.MULTILINE)
    run_dirs = sorted(str(p.parent.relative_to(results / "runs")) for p in results.glob("runs/**/metrics.json"))
    assert len(run_dirs) == 9 and sorted(ran) == run_dirs
    assert {d.split("/")[3] for d in run_dirs} == {"qat-w2a2", "adabits", "apdnn", "mebqat"}
    for rule in ("mlflow_store", "build_tables", "track_jobs", "track_tables", "report_pages", "report"):
        assert re.search(rf"^(local)?rule {rule}:", printed, re.MULTILINE), rule
    # tables: the cells that have runs are filled, the others empty (not zero), stand-in titled
    table2 = pd.read_csv(results / "tables" / "table2.csv")
    filled = table2.dropna(subset=["accuracy"])
    assert len(filled) > 0 and (table2["accuracy"].isna()).any()
    assert not (table2["accuracy"] == 0).all()
    assert "stand-in" in (results / "tables" / "table2.md").read_text().lower()
    for name in ("table3.csv", "table3.md", "table3.tex", "table2.html", "table3.html"):
        assert (results / "tables" / name).stat().st_size > 0
    figures = list((results / "figures").glob("*.png"))
    assert len(figures) >= 4 and all(f.stat().st_size > 5000 for f in figures)
    assert (results / "report.html").stat().st_size > 10000
    assert "9 training jobs" in (results / "report" / "summary.rst").read_text()
    assert (results / "report" / "jobs.html").read_text().count("<tr><th>smoke-official/table2/") == 9
    # MLflow: one run per job in the table's experiment, plus the tables run
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("table2")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    job_runs = [r for r in runs if r.data.tags.get("mebqat.kind") != "tables"]
    assert len(job_runs) == 9
    keys = {r.data.tags["mebqat.run_key"] for r in job_runs}
    assert len(keys) == 9
    # written by the workflow's follower from the jobs' files (no job opened the store), at the jobs' times
    assert "following" in (results / "logs" / "mlflow_follow.log").read_text()
    started = {json.loads((results / "runs" / d / "job_status.json").read_text())["started_ms"] for d in run_dirs}
    assert {r.info.start_time for r in job_runs} == started
    assert all(r.info.status == "FINISHED" and r.info.end_time > r.info.start_time for r in job_runs)
    assert not any("MLflow:" in p.read_text() for p in (results / "logs" / "jobs").rglob("*.log"))


@pytest.mark.slow
def test_every_output_prints_one_number_per_cell(smoke_table2):
    """The tables (csv, md, tex), the claims (csv, md), the README section rendered from them, the figures and
    the MLflow runs give every cell the number its jobs' metrics.json holds, with the same interval."""
    results, _ = smoke_table2
    problems = check_tables_against_metrics(results, "table2") + check_claims_against_tables(results)
    problems += check_readme_against_claims(results) + check_figures_against_tables(results, "table2")
    problems += check_mlflow_against_metrics(results, "table2")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.slow
def test_rerunning_jobs_updates_their_runs(smoke_table2, data_root):
    """Re-running every job of the finished run replaces each job's MLflow run instead of adding one."""
    import mlflow

    results, _ = smoke_table2
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("table2")
    again = snakemake(
        "--cores",
        "2",
        *SMOKE_TABLE2[:2],
        "--config",
        f"results={results}",
        f"data_root={data_root}",
        *SMOKE_TABLE2[2:],
        "--forcerun",
        "job",
        "--",
        "tables",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert len([r for r in runs if r.data.tags.get("mebqat.kind") != "tables"]) == 9


@pytest.mark.slow
def test_report_opens_on_the_summary_and_shows_tables_and_claims_inline(smoke_table2):
    """report.html in headless Chromium: the start page is the run's summary with the claims' counts; Table 2,
    the claims and the jobs display inline (an HTML page in the report's viewer, not a download) with their
    rows and captions."""
    from browser import SKIP_REASON
    from report_browser import ReportBrowser

    if SKIP_REASON:
        pytest.skip(f"report.html cannot be opened headless: {SKIP_REASON}")
    results, _ = smoke_table2
    verdicts = pd.read_csv(results / "claims.csv")
    holds = int((verdicts["verdict"] == "holds").sum())
    with ReportBrowser() as browser:
        start = browser.open_report(results / "report.html")
        assert "MEBQAT reproduction: smoke scale, official fidelity" in start
        assert f"{holds} of {len(verdicts)} checks hold" in start
        assert "9 training jobs" in start and "Stand-in data" in start
        for category in ("Tables", "Claims", "Figures", "Jobs"):
            assert category in start
        # Table 2 inline: every bitwidth row of the paper's table, ours beside the paper's
        browser.show_result("Tables", "Table 2")
        assert browser.evaluate("document.querySelector('iframe').src").startswith("data:text/html")
        table2 = browser.wait_for_frame_text("(FP,FP)")
        rows = [line.split("\t")[0] for line in table2.splitlines()]
        for row in ("(1,1)", "(2,2)", "(3,3)", "(4,4)", "(8,8)", "(16,16)", "(FP,FP)"):
            assert row in rows, row
        assert "MEBQAT" in table2 and "did not survive the extraction of its text" in table2
        browser.show_result("Tables", "Table 2", button="information-circle")
        caption = browser.wait_for("document.body.innerText.includes('did not survive') && document.body.innerText")
        assert "ours ± 95% interval" in caption
        # the claims inline, with the summary line and verdicts
        browser.show_result("Claims", "Do the paper's claims hold?")
        claims = browser.wait_for_frame_text("checks hold")
        assert f"{holds} of {len(verdicts)} checks hold" in claims and "t2-mebqat-matches-adaptive-qat" in claims
        # every job by name
        browser.show_result("Jobs", "every training job, its time and state")
        jobs = browser.wait_for_frame_text("smoke-official/table2/")
        assert jobs.count("smoke-official/table2/") >= 9 and "finished" in jobs
