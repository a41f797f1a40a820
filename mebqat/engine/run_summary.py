"""What one job found, beside its metrics.json: ``accuracy.csv`` (one row per evaluated bitwidth) and
``accuracy.svg`` (accuracy against bitwidth with 95% intervals). Its MLflow run carries both, so a run's
page shows the result without opening a file. (No pandas and no table machinery: every job writes these.)"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ..atomic import atomic_write
from ..core.config import dataset_title
from ..core.rundir_layout import ACCURACY_CSV, ACCURACY_FIGURE

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


WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 62, 20, 52, 58


def _title(identity: Mapping[str, Any]) -> tuple[str, str]:
    data = dataset_title(identity)
    trained = (
        ", ".join(identity["train_tasks"])
        if len(identity["train_tasks"]) <= 3
        else f"{len(identity['train_tasks'])} bitwidth tasks"
    )
    return (
        f"{identity['setup']} / {identity['method_title']} (trained at {trained})",
        f"{identity['scale']}, {identity['fidelity']}, seed {identity['seed']}, {data}",
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _figure(metrics: Mapping[str, Any], rows: list[dict[str, Any]]) -> str:
    """Accuracy against bitwidth with 95% intervals, as SVG text (written by hand: a job imports no plotting
    library for one line chart, and MLflow's artifact view shows SVG)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x = [LEFT + plot_w * (i + 0.5) / max(len(rows), 1) for i in range(len(rows))]

    def y(accuracy: float) -> float:
        return TOP + plot_h * (1 - min(max(accuracy, 0.0), 100.0) / 100)

    def text(tx: float, ty: float, content: str, size: int = 11, anchor: str = "middle", extra: str = "") -> str:
        return (
            f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for tick in range(0, 101, 20):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#dddddd"/>')
        parts.append(text(LEFT - 6, y(tick) + 4, str(tick), anchor="end"))
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>')
    points: list[tuple[float, float] | None] = []
    for xi, row in zip(x, rows, strict=True):
        label = str(row["bits_w"]) if row["bits_w"] == row["bits_a"] else f"({row['bits_w']},{row['bits_a']})"
        parts.append(text(xi, TOP + plot_h + 16, label))
        accuracy, ci = _number(row["accuracy"]), _number(row["ci95"]) or 0.0
        if accuracy is None:
            points.append(None)
            continue
        points.append((xi, y(accuracy)))
        if ci > 0:
            low, high = y(accuracy - ci), y(accuracy + ci)
            parts.append(
                f'<path d="M{xi:.1f},{low:.1f}V{high:.1f}M{xi - 4:.1f},{low:.1f}h8M{xi - 4:.1f},{high:.1f}h8" '
                f'stroke="#1f77b4" fill="none"/>'
            )
        parts.append(
            f'<circle cx="{xi:.1f}" cy="{y(accuracy):.1f}" r="3.5" fill="#1f77b4">'
            f"<title>{escape(label)}: {accuracy:.2f}% ± {ci:.2f}</title></circle>"
        )
    segment: list[str] = []
    for point in [*points, None]:  # a bitwidth without a result breaks the line
        if point is not None:
            segment.append(f"{point[0]:.1f},{point[1]:.1f}")
            continue
        if len(segment) > 1:
            parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
        segment = []
    first, second = _title(metrics["identity"])
    parts += [
        text(WIDTH / 2, 18, first, size=12),
        text(WIDTH / 2, 36, second, size=11),
        text(LEFT + plot_w / 2, HEIGHT - 14, "bitwidth (b_w = b_a unless shown as a pair)"),
        text(16, TOP + plot_h / 2, "accuracy (%)", extra=f' transform="rotate(-90 16 {TOP + plot_h / 2:.1f})"'),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def write_run_summary(run_dir: str | Path, metrics: Mapping[str, Any]) -> list[Path]:
    run_dir = Path(run_dir)
    rows = accuracy_rows(metrics)
    atomic_write(run_dir / ACCURACY_CSV, lambda handle: handle.write(_csv(rows)))
    figure = _figure(metrics, rows)
    atomic_write(run_dir / ACCURACY_FIGURE, lambda handle: handle.write(figure.encode()))
    return [run_dir / ACCURACY_CSV, run_dir / ACCURACY_FIGURE]
