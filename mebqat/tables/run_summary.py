"""What one job found, beside its metrics.json: ``accuracy.csv`` (one row per evaluated bitwidth) and
``accuracy.png`` (accuracy against bitwidth with 95% intervals). Its MLflow run carries both, so a run's
page shows the result without opening a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from matplotlib.figure import Figure

from .layout import bits_label, bits_rank
from .output import write_csv, write_figure

CSV_NAME, FIGURE_NAME = "accuracy.csv", "accuracy.png"


def accuracy_rows(metrics: Mapping[str, Any]) -> pd.DataFrame:
    rows = [{"bits_w": bits_label(r["bits_w"]), "bits_a": bits_label(r["bits_a"]), "accuracy": r["accuracy"],
             "ci95": r["ci95"], "n": r["n"]} for r in metrics["results"]]
    frame = pd.DataFrame(rows, columns=["bits_w", "bits_a", "accuracy", "ci95", "n"])
    order = sorted(range(len(frame)), key=lambda i: (bits_rank(frame["bits_w"][i]), bits_rank(frame["bits_a"][i])))
    return frame.iloc[order].reset_index(drop=True)


def run_figure(metrics: Mapping[str, Any], rows: pd.DataFrame) -> Figure:
    identity = metrics["identity"]
    figure = Figure(figsize=(6.4, 3.6))
    axes = figure.add_subplot()
    labels = [w if w == a else f"({w},{a})" for w, a in zip(rows["bits_w"], rows["bits_a"])]
    axes.errorbar(range(len(rows)), rows["accuracy"], yerr=rows["ci95"].fillna(0), marker="o", capsize=3)
    axes.set_xticks(range(len(rows)), labels)
    axes.set_xlabel("bitwidth (b_w = b_a unless shown as a pair)")
    axes.set_ylabel(f"accuracy (%), {identity['dataset']}")
    data = f"{identity['dataset']} (stand-in for {identity['stands_for']})" if identity["is_standin"] \
        else identity["dataset"]
    trained = ", ".join(identity["train_tasks"]) if len(identity["train_tasks"]) <= 3 else \
        f"{len(identity['train_tasks'])} bitwidth tasks"
    axes.set_title(f"{identity['setup']} / {identity['method_title']} (trained at {trained})\n"
                   f"{identity['scale']}, {identity['fidelity']}, seed {identity['seed']}, {data}", fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def write_run_summary(run_dir: str | Path, metrics: Mapping[str, Any]) -> list[Path]:
    run_dir = Path(run_dir)
    rows = accuracy_rows(metrics)
    return [write_csv(run_dir / CSV_NAME, rows), write_figure(run_dir / FIGURE_NAME, run_figure(metrics, rows), dpi=100)]
