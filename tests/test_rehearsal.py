"""The rehearsal's parts: `mebqat rehearse` kills a job with SIGKILL after its first epoch and resumes it,
the state digest names what a resume would lose, and the report names every job that would exceed its memory
request, fail to resume exactly, or wait longer for data than it computes. The reduced rehearsal of the whole
workflow on synthetic data of the real formats is in tests/test_rehearsal_workflow.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mebqat_cli
import pytest
import torch
from mebqat_cli import one_thread_env

from mebqat.cli import main
from mebqat.engine.rehearsal import state_digest
from mebqat.tables.rehearsal import problems, rehearsal_document, rehearsal_frame
from mebqat.tables.render import to_markdown

SMOKE_JOB = ["--setup", "pn_omniglot_20w1s", "--method", "mebqat_pn", "--scale", "smoke", "--threads", "1"]


def mebqat(*args: str, data_root: Path) -> subprocess.CompletedProcess:
    """`mebqat ARGS` with $MEBQAT_DATA set to ``data_root``."""
    return mebqat_cli.mebqat(*args, env=one_thread_env(MEBQAT_DATA=str(data_root)), timeout=600)


def test_a_rehearsed_job_is_killed_after_its_first_epoch_resumes_exactly_and_ends_as_an_uninterrupted_run(
    tmp_path, data_root
):
    rehearsed, plain = tmp_path / "rehearsed", tmp_path / "plain"
    done = mebqat(
        "rehearse", *SMOKE_JOB, "--out", str(rehearsed), "--mem-mb", "4000", "--no-track", data_root=data_root
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((rehearsed / "rehearsal" / "summary.json").read_text())
    assert summary["executions"]["killed"]["exit"] == -9  # a real SIGKILL, not a clean stop
    assert summary["killed"] and summary["killed_after_epoch"] == 1
    assert summary["resume_same_state"] and summary["state_differs_in"] == []
    assert 0 < summary["peak_rss_mb"] < summary["mem_mb_request"] == 4000
    assert summary["s_per_update"] > 0 and summary["batch_wait_s"] >= 0 and summary["data_bytes"] > 0
    assert summary["checkpoint_bytes"]["last.pt"] > 0
    assert "resumed to the same state" in done.stderr
    # the killed execution left only epoch 1; the resumed one trained epoch 2 and evaluated
    assert [json.loads(line)["epoch"] for line in (rehearsed / "history.jsonl").read_text().splitlines()] == [1, 2]
    assert mebqat("run", *SMOKE_JOB, "--out", str(plain), "--no-track", data_root=data_root).returncode == 0
    results = [json.loads((d / "metrics.json").read_text())["results"] for d in (rehearsed, plain)]
    assert results[0] == results[1]


def test_the_state_digest_names_the_component_a_resume_would_get_wrong():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    before = state_digest({"model": model, "optimizer": optimizer})
    assert state_digest({"model": model, "optimizer": optimizer}) == before
    optimizer.state[model.weight]["step"] += 1  # e.g. a step count the checkpoint forgot
    after = state_digest({"model": model, "optimizer": optimizer})
    assert {k for k in before if before[k] != after[k]} == {"optimizer"}
    torch.rand(1)  # the RNG moved on
    assert state_digest({"model": model, "optimizer": optimizer})["rng"] != after["rng"]


def _summary(run: Path, **changes) -> Path:
    data = {
        "job": {"table": "table2", "setup": "svhn_cnn8", "method": "mebqat", "train_task": None, "scale": "rehearsal"},
        "dataset": "svhn",
        "mem_mb_request": 16000,
        "peak_rss_mb": 9000.0,
        "executions": {"killed": {"exit": -9, "wall_s": 10.0}, "resumed": {"exit": 0, "wall_s": 12.0}},
        "killed": True,
        "resume_same_state": True,
        "state_differs_in": [],
        "s_per_update": 0.5,
        "batch_wait_s": 0.01,
        "load_to_step": 0.02,
        "data_open_s": 20.0,
        "data_bytes": 3 * 2**30,
        "test_data_bytes": 2**27,
        "checkpoint_bytes": {"last.pt": 2**20, "best.pt": 2**19},
        **changes,
    }
    (run / "rehearsal").mkdir(parents=True)
    (run / "rehearsal" / "summary.json").write_text(json.dumps(data))
    (run / "metrics.json").write_text("{}")
    return run / "metrics.json"


def test_the_report_names_every_job_over_its_request_not_resumed_exactly_or_starved_of_data(tmp_path):
    files = [
        _summary(tmp_path / "runs" / "fine"),
        _summary(tmp_path / "runs" / "big", peak_rss_mb=17000.0),
        _summary(tmp_path / "runs" / "lossy", resume_same_state=False, state_differs_in=["data", "rng"]),
        _summary(tmp_path / "runs" / "starved", batch_wait_s=0.8, load_to_step=1.6),
    ]
    frame = rehearsal_frame(files, runs_root=tmp_path / "runs")
    found = problems(frame)
    assert len(found) == 3
    assert any(p.startswith("big: peak memory 17,000 MB exceeds its request of 16,000 MB") for p in found)
    assert any(p.startswith("lossy: the resumed state differs") and "data rng" in p for p in found)
    assert any(p.startswith("starved: waits 0.800 s for a training batch") for p in found)
    text = to_markdown(rehearsal_document(frame, machine="a test CPU"))
    assert "4 jobs rehearsed on a test CPU" in text and "Problems: 3" in text
    assert "| svhn | 3,072 | 128 |" in text  # bytes held per dataset, in MB
    assert "| svhn_cnn8 | 4 | 17,000 | 16,000 | 0.500 | 1.600 | 20.0 | 1.5 | 3 of 4 |" in text


def test_a_run_without_a_rehearsal_summary_is_named(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match=r"run/rehearsal/summary.json: no rehearsal summary .*mebqat rehearse"):
        rehearsal_frame([tmp_path / "run" / "metrics.json"])


def test_a_kill_after_the_last_epoch_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["rehearse", *SMOKE_JOB, "--out", str(out), "--mem-mb", "4000", "--kill-after-epoch", "2"])
    assert code == 2
    assert "--kill-after-epoch 2: the job trains 2 epoch(s), so it would never resume" in capsys.readouterr().err
    assert not out.exists()
