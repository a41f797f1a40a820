"""What one job found, beside its metrics.json: ``accuracy.csv`` (one row per evaluated bitwidth) and
``accuracy.png`` (accuracy against bitwidth with 95% intervals). Its MLflow run carries both, so a run's
page shows the result without opening a file. (No pandas and no table machinery: every job writes these.)"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping

from ..atomic import atomic_write

CSV_NAME, FIGURE_NAME = "accuracy.csv", "accuracy.png"
COLUMNS = ("bits_w", "bits_a", "accuracy", "ci95", "n")


def _rank(bits: Any) -> int:
    return 32 if str(bits) == "FP" else int(bits)


def accuracy_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = [{key: r[key] for key in COLUMNS} for r in metrics["results"]]
    return sorted(rows, key=lambda r: (_rank(r["bits_w"]), _rank(r["bits_a"])))


def _csv(rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return text.getvalue().encode()


def _figure(metrics: Mapping[str, Any], rows: list[dict[str, Any]]):
    from matplotlib.figure import Figure

    identity = metrics["identity"]
    figure = Figure(figsize=(6.4, 3.6))
    axes = figure.add_subplot()
    labels = [str(r["bits_w"]) if r["bits_w"] == r["bits_a"] else f"({r['bits_w']},{r['bits_a']})" for r in rows]
    axes.errorbar(range(len(rows)), [r["accuracy"] for r in rows], yerr=[r["ci95"] or 0 for r in rows], marker="o",
                  capsize=3)
    axes.set_xticks(range(len(rows)), labels)
    axes.set_xlabel("bitwidth (b_w = b_a unless shown as a pair)")
    axes.set_ylabel("accuracy (%)")
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
    atomic_write(run_dir / CSV_NAME, lambda handle: handle.write(_csv(rows)))
    figure = _figure(metrics, rows)
    atomic_write(run_dir / FIGURE_NAME, lambda handle: figure.savefig(handle, format="png", dpi=100))
    return [run_dir / CSV_NAME, run_dir / FIGURE_NAME]
