"""One number per cell: every output of a finished workflow run — the tables (csv, md, tex), the claims'
verdicts (csv and md), the README section rendered from them, the figures and the MLflow runs — printed
beside the jobs' metrics.json, cell by cell. Each returns the mismatches it finds (an empty list when all
agree)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from mebqat.core.registry import METHODS, ensure_loaded
from mebqat.tables.claims import load_claims, pick
from mebqat.tables.layout import is_dedicated, table_setups

CELL = re.compile(r"^(–|-?\d+\.\d\d(?: ± (?:\d+\.\d\d|–))?)")


def _bits(value) -> str:
    return "FP" if str(value) in ("FP", "nan", "None") else str(int(float(value)))


def table_cells(results: Path, table: str) -> pd.DataFrame:
    """The table's csv rows that have one of our numbers, keyed by setup, method title and row."""
    frame = pd.read_csv(results / "tables" / f"{table}.csv", dtype={"bits_w": str, "bits_a": str})
    frame = frame.dropna(subset=["accuracy"]).copy()
    frame["row"] = [f"({_bits(w)},{_bits(a)})" for w, a in zip(frame["bits_w"], frame["bits_a"], strict=True)]
    return frame


def metrics_cells(results: Path, table: str) -> dict[tuple[str, str, str], list[float]]:
    """(setup, method title, row) → the accuracy of every job (one per seed) whose metrics.json fills it."""
    cells: dict[tuple[str, str, str], list[float]] = {}
    for path in sorted((results / "runs").glob(f"*/{table}/**/metrics.json")):
        metrics = json.loads(path.read_text())
        identity = metrics["identity"]
        own = identity["train_tasks"][0] if is_dedicated(identity["method"]) else None
        for result in metrics["results"]:
            row = f"({result['bits_w']},{result['bits_a']})".replace("None", "FP")
            if own is None or row == own.replace(" ", ""):
                cells.setdefault((identity["setup"], identity["method_title"], row), []).append(result["accuracy"])
    return cells


def check_tables_against_metrics(results: Path, table: str) -> list[str]:
    """csv accuracy = the mean of its jobs' metrics.json accuracies; md and tex print it rounded to 2 decimals."""
    problems = []
    frame, jobs = table_cells(results, table), metrics_cells(results, table)
    md = (results / "tables" / f"{table}.md").read_text()
    tex = (results / "tables" / f"{table}.tex").read_text()
    for cell in frame.itertuples():
        key = (cell.setup, cell.method, cell.row)
        if key not in jobs:
            if cell.cell_source == "run":
                problems.append(f"{table} {key}: {cell.accuracy} has no metrics.json behind it")
            continue
        expected = sum(jobs[key]) / len(jobs[key])
        if not math.isclose(cell.accuracy, expected, abs_tol=1e-3):
            problems.append(f"{table}.csv {key}: {cell.accuracy} against metrics.json {expected}")
        printed = f"{cell.accuracy:.2f}"
        if printed not in md:
            problems.append(f"{table}.md never prints {printed} for {key}")
        if printed not in tex:
            problems.append(f"{table}.tex never prints {printed} for {key}")
    return problems


def _side_method(side, setup: str, table: str) -> str | None:
    layout = next(layout for layout in table_setups(table) if layout.name == setup)
    chosen = pick(side, list(layout.methods))
    return chosen[0] if chosen else None


def claim_checks(results: Path) -> Iterator[tuple[str, float, float | None]]:
    """(what, the claims' number, the same number from the tables) for every measured accuracy or difference
    verdict: a cell's accuracy, or cell a − cell b at the verdict's deciding row."""
    ensure_loaded()
    claims = {c.id: c for c in load_claims()}
    verdicts = pd.read_csv(results / "claims.csv")
    cells: dict[str, dict[tuple[str, str, str], float]] = {}
    for row in verdicts.dropna(subset=["ours"]).itertuples():
        claim = claims[row.claim]
        if claim.statistic not in ("accuracy", "difference"):
            continue
        table = row.table
        if table not in cells:
            name = {m.title: m.name for m in METHODS}
            cells[table] = {
                (c.setup, name[c.method], c.row): c.accuracy for c in table_cells(results, table).itertuples()
            }
        at = row.worst_row
        a_row = f"({claim.a.row},{claim.a.row})" if claim.a.row else at
        a = cells[table].get((row.setup, row.method, a_row))
        if claim.statistic == "accuracy":
            yield f"{row.claim} {row.setup}/{row.method} {a_row}", row.ours, a
            continue
        b_method = _side_method(claim.b, row.setup, table)
        b_row = f"({claim.b.row},{claim.b.row})" if claim.b.row else at
        b = cells[table].get((row.setup, b_method, b_row))
        yield (
            f"{row.claim} {row.setup}: {row.method} {a_row} − {b_method} {b_row}",
            row.ours,
            None if a is None or b is None else a - b,
        )


def check_claims_against_tables(results: Path) -> list[str]:
    problems, checked = [], 0
    for what, ours, expected in claim_checks(results):
        checked += 1
        if expected is None or not math.isclose(ours, expected, abs_tol=2e-3):
            problems.append(f"claims.csv {what}: {ours} against the tables' {expected}")
    problems += _single_cell_intervals(results)
    claims_md = (results / "claims.md").read_text()
    for what, ours, _ in claim_checks(results):
        if f"{ours:.2f}" not in claims_md:
            problems.append(f"claims.md never prints {ours:.2f} ({what})")
    return problems if checked else ["claims.csv has no measured accuracy or difference to compare"]


def _single_cell_intervals(results: Path) -> list[str]:
    """A one-seed cell's interval in the claims is the job's own ci95, as the tables print it."""
    problems = []
    verdicts = pd.read_csv(results / "claims.csv").dropna(subset=["ours"])
    for row in verdicts[verdicts["statistic"] == "accuracy"].itertuples():
        frame = table_cells(results, row.table)
        layout = next(layout for layout in table_setups(row.table) if layout.name == row.setup)
        title = dict(zip(layout.methods, layout.method_titles(), strict=True))[row.method]
        cell = frame[(frame["setup"] == row.setup) & (frame["method"] == title) & (frame["row"] == row.worst_row)]
        if len(cell) == 1 and cell["seeds"].iloc[0] == 1 and not math.isnan(cell["ci95"].iloc[0]):
            if not math.isclose(row.ci95_high - row.ours, cell["ci95"].iloc[0], abs_tol=2e-3):
                problems.append(
                    f"claims.csv {row.claim} {row.setup}/{row.method} {row.worst_row}: interval "
                    f"±{row.ci95_high - row.ours:.4f} against the tables' ±{cell['ci95'].iloc[0]:.4f}"
                )
    return problems


def check_readme_against_claims(results: Path) -> list[str]:
    """The README section `mebqat tables readme` renders from this run prints each verdict's number."""
    from mebqat.tables.claims import format_statistic
    from mebqat.tables.readme import claims_section, read_verdicts

    verdicts = read_verdicts(results / "claims.csv")
    section = claims_section(verdicts, "claims.md")
    return [
        f"the README section never prints {format_statistic(row.ours, row.statistic)} ({row.claim} {row.setup})"
        for row in verdicts.dropna(subset=["ours"]).itertuples()
        if format_statistic(row.ours, row.statistic) not in section
    ]


def check_figures_against_tables(results: Path, table: str) -> list[str]:
    """Each setup's accuracy figure plots, per method, the csv's accuracies (the line's points) at its rows."""
    from mebqat.tables.figures import accuracy_figure

    problems = []
    long = pd.read_csv(results / "tables" / f"{table}.csv", dtype={"bits_w": str, "bits_a": str})
    long["bits_w"], long["bits_a"] = long["bits_w"].map(_bits), long["bits_a"].map(_bits)
    for layout in table_setups(table):
        figure = accuracy_figure(layout, long)
        plotted = {
            bars.get_label().removesuffix(" (ours)"): sorted(float(y) for y in bars.lines[0].get_ydata())
            for bars in figure.axes[0].containers
            if bars.get_label().endswith(" (ours)")
        }
        for title in layout.method_titles():
            mine = long[(long["setup"] == layout.name) & (long["method"] == title)].dropna(subset=["accuracy"])
            rows = {(w, a) for w, a in layout.rows}
            expected = sorted(
                float(v)
                for v, w, a in zip(mine["accuracy"], mine["bits_w"], mine["bits_a"], strict=True)
                if (w, a) in rows
            )
            if expected and plotted.get(title) != expected:
                problems.append(
                    f"figure {layout.name} {title}: plots {plotted.get(title)} against the csv's {expected}"
                )
    return problems


def check_mlflow_against_metrics(results: Path, table: str) -> list[str]:
    """Each job's MLflow run holds its metrics.json accuracies (rounded as the UI shows them)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(table)
    runs = {
        r.data.tags["mebqat.run_dir"].split("/runs/", 1)[-1]: r
        for r in client.search_runs([experiment.experiment_id], max_results=1000)
        if "mebqat.run_dir" in r.data.tags
    }
    problems, compared = [], 0
    for path in sorted((results / "runs").glob(f"*/{table}/**/metrics.json")):
        run = runs.get(str(path.parent.relative_to(results / "runs")))
        if run is None:
            problems.append(f"{path.parent}: no MLflow run")
            continue
        metrics = json.loads(path.read_text())
        by_task = {f"({r['bits_w']},{r['bits_a']})": r["accuracy"] for r in metrics["results"]}
        trained = metrics["identity"]["train_tasks"][0] if is_dedicated(metrics["identity"]["method"]) else None
        for key, task in (("test/acc_trained_task", trained), ("test/acc_FP", "(FP,FP)"), ("test/acc_2bit", "(2,2)")):
            logged = run.data.metrics.get(key)
            if task not in by_task:
                if logged is not None:
                    problems.append(f"{path.parent} {key}: MLflow {logged} where metrics.json has no {task}")
                continue
            compared += 1
            if logged is None or f"{logged:.2f}" != f"{by_task[task]:.2f}":
                problems.append(f"{path.parent} {key}: MLflow {logged} against metrics.json {by_task[task]}")
    if not compared:
        problems.append(f"no MLflow run of {table} holds an accuracy to compare")
    return problems + _tables_run_against_claims(client, experiment.experiment_id, results, table)


def _tables_run_against_claims(client, experiment: str, results: Path, table: str) -> list[str]:
    """The table's ``tables`` run says each verdict with the number the claims report prints."""
    from mebqat.core.accuracy import format_statistic

    (run,) = client.search_runs([experiment], filter_string="tags.`mebqat.kind` = 'tables'")
    verdicts = pd.read_csv(results / "claims.csv")
    problems = []
    for row in verdicts[verdicts["table"] == table].itertuples():
        tag = run.data.tags.get(f"claims.{row.claim}.{row.setup}.{row.method}", "")
        if not tag.startswith(row.verdict) or (
            not pd.isna(row.ours) and format_statistic(row.ours, row.statistic) not in tag
        ):
            problems.append(
                f"MLflow tables run of {table}: {row.claim} {row.setup} says {tag!r}, claims.csv "
                f"{row.verdict} {row.ours}"
            )
    holds = int((verdicts[verdicts["table"] == table]["verdict"] == "holds").sum())
    if run.data.metrics.get("claims/holds") != holds:
        problems.append(
            f"MLflow tables run of {table}: claims/holds {run.data.metrics.get('claims/holds')}, claims.csv {holds}"
        )
    return problems
