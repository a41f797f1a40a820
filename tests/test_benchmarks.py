"""The benchmark scripts run (at toy sizes on a CPU), so that they cannot rot between the machines that
measure with them: the whole accelerator check prints its four tables with a number in every measured cell,
and the step-path comparison prints its old ÷ new ratios."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}


def sections(output: str) -> dict[str, list[list[str]]]:
    """Markdown tables by the heading above them: rows of cells."""
    tables: dict[str, list[list[str]]] = {}
    heading = ""
    for line in output.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("| ") and not line.startswith("|---"):
            tables.setdefault(heading, []).append([c.strip() for c in line.strip("|").split(" | ")])
    return tables


@pytest.mark.slow
def test_the_gpu_check_runs_on_a_cpu_at_toy_sizes():
    done = subprocess.run(
        [str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--small", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=900,
        env=ENV,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tables = sections(done.stdout)
    engines = next(rows for name, rows in tables.items() if name.startswith("1. Engines"))
    header, body = engines[0], engines[1:]
    assert len(body) == 3 + 8 + 2  # 3 Table 2 networks, 8 few-shot setups, a meta-test per family
    for row in body:
        cells = dict(zip(header, row, strict=True))
        for column in ("sequential", "batched", "per-task reference", "sequential ÷ batched", "reference ÷ batched"):
            assert re.fullmatch(r"[\d.]+( ms| s)?", cells[column]), (row, column)
    rates = next(rows for name, rows in tables.items() if name.startswith("2. Rates"))
    assert len(rates) - 1 == 9 + 8 * 3  # every method of every setup
    assert all(row[2] == "sequential" for row in rates[1:])  # what `auto` picks on a CPU
    projection = next(rows for name, rows in tables.items() if name.startswith("4. Projected"))
    assert [row[0] for row in projection[1:]] == ["table2", "table4", "table5", "all"]
    assert projection[-1][1] == "115" and float(projection[-1][3].replace(",", "")) > 0


def test_the_step_paths_benchmark_prints_old_over_new():
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/step_paths.py",
            "--device",
            "cpu",
            "--scale",
            "smoke",
            "--repeats",
            "1",
            "--batch",
            "16",
            "--setups",
            "svhn_cnn8",
            "--threads",
            "1",
            "--fewshot",
            "table5:pn_omniglot_20w1s:pn_qat:(2,2)",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = sections(done.stdout)[""]
    assert len(rows) == 1 + 3 + 2 and all(re.fullmatch(r"[\d.]+", row[-1]) for row in rows[1:])
    assert [row[1:3] for row in rows[-2:]] == [["LSQ as expressions", "LSQ fused node"], ["NCHW", "channels_last"]]
