"""Extending the harness from outside the package: tests/plugins/toy_plugin.py registers a fourth quantizer
family and two methods (one per problem kind) with their metadata, and nothing else changes. Each runs
through `mebqat train` → `evaluate` → `tables build` in subprocesses that load it from $MEBQAT_PLUGINS."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import mebqat_cli
import pandas as pd
import pytest
from mebqat_cli import job_args, one_thread_env, trained

PLUGIN = Path(__file__).resolve().parent / "plugins" / "toy_plugin.py"
ENV = one_thread_env(MEBQAT_PLUGINS=str(PLUGIN))
WITHOUT = {k: v for k, v in ENV.items() if k != "MEBQAT_PLUGINS"}
mebqat = functools.partial(mebqat_cli.mebqat, env=ENV)
"""`mebqat ARGS` with the plugin loaded (``env=WITHOUT``: without it)."""


def test_a_plugin_quantizer_family_and_supervised_method_reach_the_tables(data_root, tmp_path):
    runs = tmp_path / "runs"
    toy = trained(data_root, runs / "toy", "svhn_cnn8", "toy_sandwich", "--set", "model.scheme=toy", env=ENV)
    trained(data_root, runs / "qat", "svhn_cnn8", "qat", "--train-task", "(2,2)", env=ENV)
    metrics = json.loads((toy / "metrics.json").read_text())
    assert metrics["identity"]["quantizer"] == "toy" and metrics["identity"]["method_title"] == "Toy sandwich"
    assert len(metrics["results"]) == 10 and metrics["costs"]["backward_passes_per_update"] == 2
    # the family's learned clipping levels are counted as quantizer parameters (its declared kind)
    described = mebqat("describe", "cnn_svhn", "--scheme", "toy", "--json")
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["quantizer_params"] == 6  # one α per quantized activation site

    built = mebqat("tables", "build", "--runs", str(runs), "--out", str(tmp_path / "tables"), "--tables", "2", "3")
    assert built.returncode == 0, built.stderr[-3000:]
    table2 = pd.read_csv(tmp_path / "tables" / "table2.csv")
    mine = table2[(table2["method"] == "Toy sandwich") & (table2["setup"] == "svhn_cnn8")]
    assert len(mine) == 10 and mine["accuracy"].notna().all()
    assert table2[(table2["method"] == "Toy sandwich") & (table2["setup"] != "svhn_cnn8")].empty
    assert "Toy sandwich" in (tmp_path / "tables" / "table2.md").read_text()
    qat = table2[(table2["method"] == "QAT") & (table2["setup"] == "svhn_cnn8")].dropna(subset=["accuracy"])
    assert list(zip(qat["bits_w"].astype(str), qat["bits_a"].astype(str), strict=True)) == [("2", "2")]
    assert "Toy" not in (tmp_path / "tables" / "table3.md").read_text()  # no cost role declared: not costed


def test_a_plugin_fewshot_method_runs_through_the_same_engine(data_root, tmp_path):
    runs = tmp_path / "runs"
    out = runs / "toy_pn"
    done = mebqat(*job_args(data_root, out, "pn_omniglot_20w1s", "toy_pn_sandwich", "--no-track", command="run"))
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["costs"]["backward_passes_per_update"] == 2  # (FP,FP) and (2,2) share every episode
    assert [r["n"] for r in metrics["results"]] == [6] * 9
    built = mebqat("tables", "build", "--runs", str(runs), "--out", str(tmp_path / "tables"), "--tables", "5")
    assert built.returncode == 0, built.stderr[-3000:]
    table5 = pd.read_csv(tmp_path / "tables" / "table5.csv")
    assert table5[table5["method"] == "Toy PN sandwich"]["accuracy"].notna().sum() == 9


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--setup", "svhn_cnn8", "--method", "toy_sandwich", "--print-config"],
            "invalid choice: 'toy_sandwich'",
        ),
        (["describe", "cnn_svhn", "--scheme", "toy"], "unknown quantizer family 'toy'"),
    ],
)
def test_without_the_plugin_its_names_are_unknown(args, message):
    done = mebqat(*args, env=WITHOUT)
    assert done.returncode != 0 and message in done.stderr


def test_a_broken_plugin_is_named(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    done = mebqat("train", "--help", env={**WITHOUT, "MEBQAT_PLUGINS": str(broken)})
    assert done.returncode != 0
    assert f"plugin '{broken}'" in done.stderr and "RuntimeError: boom" in done.stderr
