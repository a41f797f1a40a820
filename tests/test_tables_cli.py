"""`mebqat tables build` end to end on hand-made runs: every table and figure is written, atomically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from tables_metrics import ramp, write_metrics

from mebqat.cli import main
from mebqat.tables.layout import ACCURACY_TABLES, table_setups
from mebqat.tables.output import write_figure

SCRIPT = str(Path(sys.executable).parent / "mebqat")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_build_writes_every_table_and_figure(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_metrics(runs, "svhn_cnn8", "mebqat", ramp("svhn_cnn8", 50), costs={"backward_passes_per_update": 4.0})
    write_metrics(runs, "svhn_cnn8", "qat", ramp("svhn_cnn8", 20), train_task="(4,4)")
    write_metrics(runs, "pn_omniglot_20w5s", "mebqat_pn", ramp("pn_omniglot_20w5s", 60))
    out, figures = tmp_path / "results" / "tables", tmp_path / "results" / "figures"
    code = main(
        [
            "tables",
            "build",
            "--runs",
            str(runs),
            "--out",
            str(out),
            "--figures",
            str(figures),
            "--figure-formats",
            "png",
            "svg",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out.split()
    for n in (2, 3, 4, 5):
        for ext in ("csv", "md", "tex"):
            assert (out / f"table{n}.{ext}").stat().st_size > 500
    names = [f"accuracy_{t}_{s.name}" for t in ACCURACY_TABLES for s in table_setups(t)] + ["costs_table3"]
    assert len(names) == 12
    for name in names:
        png = figures / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 20_000, name
        assert (figures / f"{name}.svg").exists()
    assert str(figures / "accuracy_table2_svhn_cnn8.png") in printed
    assert not [p for p in tmp_path.rglob(".*.tmp")]  # no temp file left behind
    # A second build over the same outputs replaces them in place.
    assert main(["tables", "build", "--runs", str(runs), "--out", str(out), "--tables", "2"]) == 0


def test_only_requested_tables_are_written(tmp_path):
    (tmp_path / "runs").mkdir()
    assert (
        main(
            [
                "tables",
                "build",
                "--runs",
                str(tmp_path / "runs"),
                "--out",
                str(tmp_path / "out"),
                "--tables",
                "3",
                "table4",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "table3.csv",
        "table3.html",
        "table3.md",
        "table3.tex",
        "table4.csv",
        "table4.html",
        "table4.md",
        "table4.tex",
    ]


def test_bad_input_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["tables", "build", "--runs", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "missing" in capsys.readouterr().err
    (tmp_path / "runs").mkdir()
    assert (
        main(["tables", "build", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o"), "--tables", "7"]) == 2
    )
    assert "unknown table" in capsys.readouterr().err


def test_interrupted_figure_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "fig.png"
    target.write_bytes(b"previous")

    def broken_savefig(self, handle, **kwargs):
        handle.write(b"half a png")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(KeyboardInterrupt):
        write_figure(target, Figure())
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["fig.png"]


def test_help_of_the_subcommands(capsys):
    for args, expected in ((["tables", "--help"], "build"), (["tables", "build", "--help"], "--figures")):
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code == 0 and expected in capsys.readouterr().out
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # and through the console script the workflow calls
    done = subprocess.run([SCRIPT, "tables", "build", "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and "--runs" in done.stdout, done.stderr


def test_report_pages_summarise_the_run_and_name_every_job(tmp_path):
    """`mebqat tables report`: summary.rst (the report's start page) counts the jobs and the claims' verdicts from
    the files; jobs.html has one row per job, named by its run directory, with its task, times and state."""
    import json

    runs = tmp_path / "runs"
    mebqat = write_metrics(runs, "svhn_cnn8", "mebqat", ramp("svhn_cnn8", 50), name="t2/svhn/mebqat/seed0")
    write_metrics(runs, "svhn_cnn8", "qat", ramp("svhn_cnn8", 20), train_task="(4,4)", name="t2/svhn/qat-w4a4/seed0")
    (mebqat.parent / "job_status.json").write_text(
        json.dumps({"state": "finished", "started_ms": 1_000_000, "ended_ms": 1_065_500})
    )
    assert main(["tables", "claims", "--runs", str(runs), "--out", str(tmp_path)]) == 0
    out = tmp_path / "report"
    assert (
        main(
            [
                "tables",
                "report",
                "--runs",
                str(runs),
                "--claims",
                str(tmp_path / "claims.csv"),
                "--runs-root",
                str(runs),
                "--tables",
                "2",
                "3",
                "--mlflow-uri",
                "sqlite:///x/mlflow.db",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = (out / "summary.rst").read_text()
    import pandas as pd

    verdicts = pd.read_csv(tmp_path / "claims.csv")
    counts = verdicts["verdict"].value_counts()
    assert f"**{counts.get('holds', 0)} of {len(verdicts)} checks hold" in summary
    assert "**2 training jobs** (Table 2: 2)" in summary and "Stand-in data" in summary
    assert "`table2.html`_, `table3.html`_" in summary and "sqlite:///x/mlflow.db" in summary
    assert "{{" not in summary and "{%" not in summary  # Snakemake renders it with Jinja first
    page = (out / "jobs.html").read_text()
    assert "<tr><th>t2/svhn/mebqat/seed0</th>" in page and "<tr><th>t2/svhn/qat-w4a4/seed0</th>" in page
    assert "<td>(4,4)</td>" in page and "<td>75 bitwidths</td>" in page and "1 min 06 s" in page
