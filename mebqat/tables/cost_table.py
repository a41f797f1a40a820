"""Table 3 (costs): the cost model's formulas evaluated with the real N, M, r and T of each Table 2 setup,
beside what the runs measured (passes per update and stored parameters from metrics.json), beside what
survives of the paper's Table 3 (its text, and the reconstruction in ``table3_costs.csv``).

Measured storage of dedicated QAT is the sum over the per-bitwidth jobs that exist (``measured_jobs`` of
N); a measured cell without a run is empty. Measured models have the width of the scale they ran at, so
at smoke/mini scale their parameter counts are not the paper's M.
"""

from __future__ import annotations

import pandas as pd

from .accuracy_tables import standin_note
from .collect import COSTS
from .cost_model import (
    BACKPROP_FORMULA,
    DEDICATED,
    MEBQAT,
    PAPER_METHOD,
    ROLES,
    STORAGE_FORMULA,
    SetupCosts,
    backprop_ratio,
    backprop_saving,
    setup_costs,
    storage_saving,
)
from .paper import paper_costs
from .render import EMPTY, Block, Document

COLUMNS = [
    "table",
    "setup",
    "dataset",
    "model",
    "method",
    "metric",
    "formula",
    "N",
    "T",
    "M",
    "r",
    "formula_value",
    "measured",
    "measured_jobs",
    "measured_bitwidths",
    "measured_seeds",
    "scale",
    "run_dataset",
    "is_standin",
    "paper_value",
    "paper_inferred_value",
]
PAPER_METRIC = {"backprops_per_update": "training computation cost", "stored_parameters": "storage cost"}


def measured_costs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (setup, method) of Table 2 that has jobs: mean over seeds of each job's counted passes
    per update and stored parameters; dedicated QAT's storage summed over its per-bitwidth jobs."""
    columns = [
        "setup",
        "method",
        "backward",
        "forward",
        "stored",
        "jobs",
        "bitwidths",
        "seeds",
        "scale",
        "run_dataset",
        "is_standin",
        "dataset",
    ]
    jobs = frame[frame["table"] == "table2"].drop_duplicates("path")
    if jobs.empty:
        return pd.DataFrame(columns=columns)
    per_cell = (
        jobs.groupby(["setup", "method", "cell_task"], sort=False)
        .agg(
            **{c: (c, "mean") for c in COSTS},
            seeds=("seed", "nunique"),
            bitwidths=("train_tasks", lambda s: len(s.iloc[0])),
            scale=("scale", "first"),
            run_dataset=("dataset", "first"),
            is_standin=("is_standin", "first"),
            dataset=("paper_dataset", "first"),
        )
        .reset_index()
    )
    rows = []
    for (setup, method), group in per_cell.groupby(["setup", "method"], sort=False):
        rows.append(
            {
                "setup": setup,
                "method": method,
                "backward": group["backward_passes_per_update"].mean(),
                "forward": group["forward_passes_per_update"].mean(),
                "stored": group["stored_parameters"].sum(),
                "jobs": len(group),
                "bitwidths": int(group["bitwidths"].sum()),
                "seeds": int(group["seeds"].min()),
                "scale": group["scale"].iloc[0],
                "run_dataset": group["run_dataset"].iloc[0],
                "is_standin": bool(group["is_standin"].iloc[0]),
                "dataset": group["dataset"].iloc[0],
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _paper(role: str, metric: str) -> tuple[str, str]:
    if metric not in PAPER_METRIC:
        return "", ""
    paper = paper_costs()
    match = paper[(paper["method"] == PAPER_METHOD[role]) & (paper["metric"] == PAPER_METRIC[metric])]
    if match.empty:
        return "", ""
    return match["value"].iloc[0], match["inferred_value"].iloc[0]


def _cost_rows(costs: SetupCosts, measured: pd.DataFrame) -> list[dict]:
    layout = costs.layout
    common = {
        "table": "table3",
        "setup": layout.name,
        "dataset": layout.paper_dataset,
        "model": layout.paper_model,
        "N": costs.n,
        "T": costs.t,
        "M": costs.m,
        "r": costs.r,
    }
    rows = []
    for role in ROLES:
        method = costs.methods[role]
        found = measured[(measured["setup"] == layout.name) & (measured["method"] == method)]
        run = found.iloc[0].to_dict() if not found.empty else {}
        about_run = {
            "measured_jobs": run.get("jobs"),
            "measured_bitwidths": run.get("bitwidths"),
            "measured_seeds": run.get("seeds"),
            "scale": run.get("scale", ""),
            "run_dataset": run.get("run_dataset", ""),
            "is_standin": run.get("is_standin"),
        }
        for metric, formula, value, measured_value in (
            ("backprops_per_update", BACKPROP_FORMULA[role], costs.backprops(role), run.get("backward")),
            ("forward_passes_per_update", "", None, run.get("forward")),
            ("stored_parameters", STORAGE_FORMULA[role], costs.storage(role), run.get("stored")),
        ):
            paper_value, paper_inferred = _paper(role, metric)
            rows.append(
                {
                    **common,
                    "method": costs.title(role),
                    "metric": metric,
                    "formula": formula,
                    "formula_value": value,
                    "measured": measured_value,
                    **about_run,
                    "paper_value": paper_value,
                    "paper_inferred_value": paper_inferred,
                }
            )
    savings = (
        ("backprop_saving_vs_adaptive", "1 − T/N", backprop_saving(costs.n, costs.t)),
        ("storage_saving_vs_dedicated", "1 − 1/N", storage_saving(costs.n)),
        ("backprop_ratio_adaptive_over_mebqat", "N/T", backprop_ratio(costs.n, costs.t)),
    )
    for metric, formula, value in savings:
        rows.append(
            {**common, "method": costs.title(MEBQAT), "metric": metric, "formula": formula, "formula_value": value}
        )
    return rows


def cost_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Table 3 in long form: per Table 2 setup and method, each cost metric's formula, its value with the
    real N, M, r, T, the measured count, and the paper's surviving and reconstructed text."""
    measured = measured_costs(frame)
    rows = [row for costs in setup_costs(frame) for row in _cost_rows(costs, measured)]
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


# ---------------------------------------------------------------- human-readable


def _count(value: float | None) -> str:
    """An integral count with thousands separators, a mean with two decimals, ``–`` for nothing."""
    if value is None or pd.isna(value):
        return EMPTY
    value = float(value)
    return f"{round(value):,}" if abs(value - round(value)) < 1e-6 else f"{value:,.2f}"


def _measured_text(row: pd.Series, costs: SetupCosts, role: str) -> str:
    text = _count(row["measured"])
    if text == EMPTY:
        return text
    if role == DEDICATED:
        return f"{text} ({int(row['measured_jobs'])} of {costs.n} models)"
    return f"{text} ({int(row['measured_bitwidths'])} bitwidths)"


def _block(costs: SetupCosts, long: pd.DataFrame) -> Block:
    layout = costs.layout
    size = (
        f"M = {costs.size.params:,} parameters, r = {100 * costs.size.bn_share:.2f}% (BatchNorm)"
        if costs.size is not None
        else f"M and r {EMPTY} (no run of this setup measured its paper-width architecture)"
    )
    title = (
        f"{layout.paper_dataset}, {layout.paper_model} ({layout.quantizer} quantizer): N = {costs.n} bitwidth "
        f"settings, {size}, T = {costs.t}"
    )
    block = Block(
        title=title,
        row_header="method",
        groups=[
            ("backprops per update", 3),
            ("forward passes per update", 1),
            ("storage (parameters)", 3),
            ("paper (surviving text / reconstruction)", 2),
        ],
        columns=[
            "formula",
            "value",
            "measured",
            "measured",
            "formula",
            "value",
            "measured",
            "training cost",
            "storage",
        ],
    )
    mine = long[long["setup"] == layout.name]
    for role in ROLES:
        rows = mine[mine["method"] == costs.title(role)].set_index("metric")
        bp, fw, st = (
            rows.loc["backprops_per_update"],
            rows.loc["forward_passes_per_update"],
            rows.loc["stored_parameters"],
        )
        block.add_row(
            costs.title(role),
            [
                bp["formula"],
                _count(bp["formula_value"]),
                _measured_text(bp, costs, role),
                _count(fw["measured"]),
                st["formula"],
                _count(st["formula_value"]),
                _measured_text(st, costs, role),
                _paper_text(bp),
                _paper_text(st),
            ],
        )
    return block


def _paper_text(row: pd.Series) -> str:
    value, inferred = row["paper_value"] or "", row["paper_inferred_value"] or ""
    if value and inferred:
        return f"{value} / {inferred}"
    return f"{value or '?'} / {inferred}" if inferred else (value or EMPTY)


def _savings_block(long: pd.DataFrame, all_costs: tuple[SetupCosts, ...]) -> Block:
    block = Block(
        title="MEBQAT's savings (formulas with each setup's N and T)",
        row_header="setup",
        groups=[("", 5)],
        columns=[
            "N",
            "T",
            "backprops vs AdaBits/ApDNN: 1 − T/N",
            "storage vs dedicated QAT: 1 − 1/N",
            "backprop ratio: N/T",
        ],
    )
    for costs in all_costs:
        mine = long[long["setup"] == costs.layout.name].set_index("metric")["formula_value"]
        block.add_row(
            f"{costs.layout.paper_dataset}, {costs.layout.paper_model}",
            [
                str(costs.n),
                str(costs.t),
                f"{100 * mine['backprop_saving_vs_adaptive']:.1f}% fewer",
                f"{100 * mine['storage_saving_vs_dedicated']:.1f}% less",
                f"{mine['backprop_ratio_adaptive_over_mebqat']:.2f}×",
            ],
        )
    return block


def cost_document(long: pd.DataFrame, frame: pd.DataFrame) -> Document:
    title = "Table 3: training cost (backprops per update) and storage"
    measured = long[long["measured"].notna()]
    standin = standin_note(measured.assign(is_standin=measured["is_standin"].astype(object)))
    if standin:
        title = (
            f"Table 3 (measured columns from stand-in data: {standin} — not comparable with the paper): "
            "training cost (backprops per update) and storage"
        )
    if measured.empty:
        runs = "No Table 2 runs were found: every measured cell is empty."
    else:
        runs = (
            f"Measured: counted by the runs (scale {', '.join(sorted(set(measured['scale'])))}), mean over seeds; "
            "their models have the width of that scale, so their parameter counts are the paper's M only at "
            "paper scale. AdaBits/ApDNN and MEBQAT measure the bitwidths each run trains (in parentheses)."
        )
    caption = [
        "Formulas of the cost model (official-mebqat.md §9.4) evaluated with N = the number of bitwidth settings "
        "of the setup's quantizer, M and r = parameter count and BatchNorm share of the architecture at the "
        "paper's width (as the setup's jobs measured it), T = MEBQAT's tasks per update.",
        runs,
        "Paper: the surviving text of Table 3 / its reconstruction (inferred, not a fact); ? = lost.",
        f"{EMPTY}: no run (or nothing measured).",
    ]
    all_costs = setup_costs(frame)
    blocks = [_block(costs, long) for costs in all_costs] + [_savings_block(long, all_costs)]
    return Document(title=title, caption=caption, blocks=blocks, label="table3")
