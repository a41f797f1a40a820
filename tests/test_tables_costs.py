"""Table 3: the cost model's formulas with the real architectures, the headline savings, and the measured
counts from hand-made metrics files."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from tables_metrics import write_metrics

from mebqat.models import build as build_model
from mebqat.models import parameter_counts
from mebqat.quant import bitwidth_candidates
from mebqat.tables import backprop_ratio, backprop_saving, build, collect, cost_frame, setup_costs, storage_saving
from mebqat.tables.cost_model import ADAPTIVE, DEDICATED, MEBQAT
from mebqat.tables.layout import table_setups

# official-mebqat.md §9.3: parameter counts (weights, biases, BN affine) and BN shares of the real nets.
SPEC_SIZES = {
    "cifar10_mobilenetv2": (2_236_682, 1.53),
    "cifar10_preact_resnet20": (6_758_810, 0.12),
    "svhn_cnn8": (2_081_354, 0.05),
}


def paper_width(setup: str) -> tuple[int, int]:
    """What a job of the setup measures of its architecture at the paper's width (the spec's counts)."""
    layout = next(s for s in table_setups("table2") if s.name == setup)
    counts = parameter_counts(build_model(layout.model, scheme=layout.quantizer, **dict(layout.model_options)))
    return counts["params"], counts["bn_params"]


def test_headline_savings_of_the_abstract():
    n, t = len(bitwidth_candidates("dorefa")), 4
    assert n == 75
    assert round(100 * backprop_saving(n, t), 1) == 94.7
    assert round(100 * storage_saving(n), 1) == 98.7
    assert backprop_ratio(n, t) == 18.75


def test_formulas_use_the_architectures_the_runs_measured(tmp_path):
    for setup in SPEC_SIZES:
        write_metrics(tmp_path, setup, "mebqat", {("4", "4"): 50.0}, architecture=paper_width(setup))
    costs = {c.layout.name: c for c in setup_costs(collect([tmp_path]))}
    assert set(costs) == set(SPEC_SIZES)
    for name, (params, share) in SPEC_SIZES.items():
        c = costs[name]
        assert c.m == params and round(100 * c.r, 2) == share
        assert c.t == 4
        assert c.storage(DEDICATED) == c.n * params
        assert c.storage(ADAPTIVE) == pytest.approx(params + (c.n - 1) * c.size.bn_params)
        assert c.storage(MEBQAT) == params
        assert (c.backprops(DEDICATED), c.backprops(ADAPTIVE), c.backprops(MEBQAT)) == (1, c.n, 4)
    assert costs["cifar10_mobilenetv2"].n == 73 and costs["svhn_cnn8"].n == 75
    assert costs["cifar10_mobilenetv2"].title(ADAPTIVE) == "AdaBits" and costs["svhn_cnn8"].title(ADAPTIVE) == "ApDNN"


def test_without_a_run_the_architecture_cells_are_empty_but_n_and_t_are_known(tmp_path):
    long = cost_frame(collect([tmp_path]))
    storage = long[long["metric"] == "stored_parameters"]
    assert storage["formula_value"].isna().all() and storage["M"].isna().all()
    saving = long[long["metric"] == "backprop_saving_vs_adaptive"]
    assert saving["formula_value"].notna().all()


def measured(long: pd.DataFrame, setup: str, method: str, metric: str) -> pd.Series:
    row = long[(long["setup"] == setup) & (long["method"] == method) & (long["metric"] == metric)]
    assert len(row) == 1
    return row.iloc[0]


def test_measured_columns_from_the_runs(tmp_path):
    runs = tmp_path / "runs"
    setup = "svhn_cnn8"
    for task, stored in (("(2,2)", 1000), ("(4,4)", 1100)):  # two of the 75 dedicated models
        write_metrics(
            runs,
            setup,
            "qat",
            {("4", "4"): 50.0},
            train_task=task,
            architecture=paper_width(setup),
            costs={"stored_parameters": stored, "backward_passes_per_update": 1.0},
        )
    for seed, forward in enumerate((7.0, 6.0)):  # MEBQAT, two seeds: the mean is reported
        write_metrics(
            runs,
            setup,
            "mebqat",
            {("4", "4"): 50.0},
            seed=seed,
            costs={"stored_parameters": 1010, "backward_passes_per_update": 4.0, "forward_passes_per_update": forward},
        )
    long = cost_frame(collect([runs]))
    qat_storage = measured(long, setup, "QAT", "stored_parameters")
    assert qat_storage["measured"] == 2100 and qat_storage["measured_jobs"] == 2
    assert qat_storage["formula_value"] == 75 * 2_081_354 and qat_storage["paper_inferred_value"] == "N*M"
    assert measured(long, setup, "MEBQAT", "backprops_per_update")["measured"] == 4.0
    assert measured(long, setup, "MEBQAT", "forward_passes_per_update")["measured"] == 6.5
    mebqat = measured(long, setup, "MEBQAT", "stored_parameters")
    assert mebqat["measured"] == 1010 and mebqat["measured_seeds"] == 2 and mebqat["measured_bitwidths"] == 75
    # No ApDNN run and no run at all for the other setups: their measured cells are empty.
    assert math.isnan(measured(long, setup, "ApDNN", "backprops_per_update")["measured"])
    assert long[long["setup"] != setup]["measured"].isna().all()
    saving = measured(long, "cifar10_preact_resnet20", "MEBQAT", "backprop_saving_vs_adaptive")
    assert saving["formula_value"] == pytest.approx(1 - 4 / 75)

    build([runs], tmp_path / "out", tables=["3"])
    markdown = (tmp_path / "out" / "table3.md").read_text()
    assert "2,100 (2 of 75 models)" in markdown and f"{75 * 2_081_354:,}" in markdown
    assert "94.7% fewer" in markdown and "18.75×" in markdown
    assert "stand-in data: digits in place of SVHN" in markdown.splitlines()[0]
    csv = pd.read_csv(tmp_path / "out" / "table3.csv")
    assert len(csv) == len(long) and {"formula", "formula_value", "measured", "paper_value"} <= set(csv.columns)
