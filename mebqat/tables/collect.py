"""Read every job's ``metrics.json`` into one tidy DataFrame, and combine the seeds of each cell.

``collect(paths)`` gives one row per (job, evaluated bitwidth): the job's identity, ``bits_w``/``bits_a``
(as the paper's CSVs write them: ``"4"``, ``"FP"``), ``accuracy``, ``ci95``, ``n`` and the job's costs.
``combine_seeds(frame)`` gives one row per (cell, bitwidth): the mean over seeds and, with more than one
seed, a 95% Student-t interval across seeds (with one seed, the job's own interval over its test tasks or
batches). Identity columns are strings ("" when absent) so that they group and join without NaN traps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from ..core.files import InputError
from ..core.registry import METHODS
from ..core.rundir_layout import METRICS, read_metrics_file
from ..core.schemas import first_violation
from ..core.tasks import BitwidthTask
from .layout import bits_label, find_layout, is_dedicated, normalize_table

IDENTITY = [
    "table",
    "setup",
    "method",
    "method_title",
    "scale",
    "fidelity",
    "seed",
    "train_tasks",
    "dataset",
    "is_standin",
    "stands_for",
    "paper_dataset",
    "paper_model",
    "ways",
    "shots",
    "model",
    "quantizer",
]
COSTS = [
    "forward_passes_per_update",
    "backward_passes_per_update",
    "updates",
    "stored_parameters",
    "stored_buffers",
    "checkpoint_bytes",
    "train_wall_time_s",
]
ARCHITECTURE = ["paper_params", "paper_bn_params"]
RESULT = ["bits_w", "bits_a", "accuracy", "ci95", "n"]
COLUMNS = ["path", *IDENTITY, "fidelity_switches", *RESULT, *COSTS, *ARCHITECTURE]
# What must agree between the seeds of one cell (everything but the seed and the numbers).
MUST_AGREE = [c for c in IDENTITY if c != "seed"] + ["fidelity_switches"]
CELL = ["table", "setup", "method", "cell_task"]
"""A cell group: a dedicated (one network per bitwidth) job is its own column entry per training task."""


class MetricsError(ValueError):
    """A metrics.json that cannot be used, or jobs that contradict each other; names the file(s)."""


def find_metrics(paths: Iterable[str | Path]) -> list[Path]:
    """Every metrics.json under the given run directories, plus the files given directly; each once."""
    found: dict[Path, None] = {}
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            for file in sorted(path.rglob(METRICS)):
                found.setdefault(file.resolve(), None)
        elif path.is_file():
            found.setdefault(path.resolve(), None)
        else:
            raise FileNotFoundError(f"{path}: no such run directory or metrics file")
    return list(found)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """One job's metrics.json as rows (one per evaluated bitwidth); a bad file is an error naming it."""
    path = Path(path)
    try:
        data = read_metrics_file(path)
    except InputError as err:
        raise MetricsError(str(err)) from None
    violation = first_violation(data, "metrics")
    if violation:
        raise MetricsError(f"{path}: does not match the metrics schema {violation}")
    ident, costs = data["identity"], data["costs"]
    if not data["results"]:
        raise MetricsError(f"{path}: holds no evaluated bitwidth")
    _check_against_setup(path, ident)
    train_tasks = tuple(str(BitwidthTask.parse(t)) for t in ident["train_tasks"])
    common = {
        "path": str(path),
        **{k: _text(ident.get(k)) for k in IDENTITY},
        "seed": int(ident["seed"]),
        "is_standin": bool(ident["is_standin"]),
        "train_tasks": train_tasks,
        "fidelity_switches": json.dumps(data["fidelity_switches"], sort_keys=True),
        **{k: costs.get(k) for k in COSTS},
        "paper_params": data.get("architecture", {}).get("paper_width", {}).get("params"),
        "paper_bn_params": data.get("architecture", {}).get("paper_width", {}).get("bn_params"),
    }
    rows, seen = [], set()
    for result in data["results"]:
        bits = (bits_label(result["bits_w"]), bits_label(result["bits_a"]))
        if bits in seen:
            raise MetricsError(f"{path}: bitwidth ({bits[0]},{bits[1]}) appears twice in results")
        seen.add(bits)
        rows.append(
            {
                **common,
                "bits_w": bits[0],
                "bits_a": bits[1],
                "accuracy": float(result["accuracy"]),
                "ci95": math.nan if result["ci95"] is None else float(result["ci95"]),
                "n": int(result["n"]),
            }
        )
    return rows


def _check_against_setup(path: Path, ident: dict[str, Any]) -> None:
    """A job must belong to a setup of its table and carry that setup's paper names (else it is stale)."""
    try:
        layout = find_layout(normalize_table(ident["table"]), ident["setup"])
    except ValueError as err:
        raise MetricsError(f"{path}: {err}") from None
    if ident["method"] not in layout.methods:
        try:
            tables = METHODS.get(ident["method"]).tables
        except ValueError as err:
            raise MetricsError(f"{path}: {err} (a plugin's method? load it with $MEBQAT_PLUGINS)") from None
        if layout.table not in tables:
            raise MetricsError(
                f"{path}: method {ident['method']!r} is not part of setup {layout.name!r} "
                f"(its methods: {', '.join(layout.methods)}) and runs on {', '.join(tables)}"
            )
    expected = {
        "paper_dataset": layout.paper_dataset,
        "paper_model": layout.paper_model,
        "ways": layout.ways,
        "shots": layout.shots,
    }
    for key, value in expected.items():
        if ident.get(key) != value:
            raise MetricsError(
                f"{path}: identity.{key} is {ident.get(key)!r} but setup {layout.name!r} "
                f"has {value!r} (a metrics file from another version of the setup?)"
            )


def collect(paths: Iterable[str | Path], scale: str | None = None, fidelity: str | None = None) -> pd.DataFrame:
    """Read and validate every metrics.json under ``paths`` (run directories or files): one row per
    (job, evaluated bitwidth), keeping only the given scale and fidelity (None: all). No file at all gives
    an empty frame with the same columns."""
    rows = [
        row
        for file in find_metrics(paths)
        for row in read_metrics(file)
        if scale in (None, row["scale"]) and fidelity in (None, row["fidelity"])
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["seed"] = frame["seed"].astype(int)
    frame["is_standin"] = frame["is_standin"].astype(bool)
    frame["cell_task"] = [
        tasks[0] if is_dedicated(method) else ""
        for method, tasks in zip(frame["method"], frame["train_tasks"], strict=True)
    ]
    _check_consistent(frame)
    return frame


def _check_consistent(frame: pd.DataFrame) -> None:
    """Jobs claiming the same cell must be seeds of one configuration, each seed once."""
    for key, group in frame.groupby(CELL, sort=False):
        cell = "{}/{}/{}{}".format(*key[:3], f" trained at {key[3]}" if key[3] else "")
        jobs = group.drop_duplicates("path")
        for column in MUST_AGREE:
            values = jobs[column].map(str).unique()
            if len(values) > 1:
                listing = "; ".join(f"{p}: {v}" for p, v in zip(jobs["path"], jobs[column].map(str), strict=True))
                raise MetricsError(
                    f"jobs for the same cell {cell} disagree on {column} ({listing}); "
                    f"build the tables from one configuration, or pick one with --scale/--fidelity"
                )
        repeated = jobs[jobs.duplicated("seed", keep=False)]
        if not repeated.empty:
            raise MetricsError(
                f"cell {cell} has more than one job for seed {int(repeated['seed'].iloc[0])}: "
                f"{', '.join(repeated['path'])}"
            )


def single_configuration(frame: pd.DataFrame, table: str) -> None:
    """One table is built from one scale and one fidelity; a mix is an error that says how to choose."""
    rows = frame[frame["table"] == table]
    for column, option in (("scale", "--scale"), ("fidelity", "--fidelity")):
        values = sorted(rows[column].unique())
        if len(values) > 1:
            raise MetricsError(f"{table}: the runs mix {column}s {', '.join(values)}; choose one with {option}")


def _seed_interval(values: pd.Series) -> float:
    """95% Student-t half-width of the mean across seeds (NaN for one seed)."""
    k = len(values)
    if k < 2:
        return math.nan
    return float(stats.t.ppf(0.975, k - 1) * values.std(ddof=1) / math.sqrt(k))


def combine_seeds(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, bitwidth): identity, ``seeds``, mean ``accuracy``, ``ci95`` (across seeds when
    there are several, else the job's own), ``ci95_over`` (``seeds`` / ``job``), ``n`` and mean costs."""
    keys = CELL + [c for c in MUST_AGREE if c not in CELL] + ["bits_w", "bits_a"]
    if frame.empty:
        return pd.DataFrame(
            columns=[*keys, "seeds", "seed_list", "accuracy", "ci95", "ci95_over", "n", *COSTS, "paths"]
        )
    rows = []
    for key, group in frame.groupby(keys, sort=False):
        seeds = len(group)
        row = dict(zip(keys, key, strict=True))
        row.update(
            seeds=seeds,
            seed_list=",".join(str(s) for s in sorted(group["seed"])),
            accuracy=float(group["accuracy"].mean()),
            ci95=_seed_interval(group["accuracy"]) if seeds > 1 else float(group["ci95"].iloc[0]),
            ci95_over="seeds" if seeds > 1 else "job",
            n=int(group["n"].min()),
            **{c: group[c].astype(float).mean() for c in COSTS},
            paths=";".join(group["path"]),
        )
        rows.append(row)
    return pd.DataFrame(rows)
