"""Attaching the built tables and figures to one run per table experiment (run name ``tables``).

``table{2,3,4,5}.{csv,md,tex}`` go to experiment ``tableN``. A figure goes to the experiments whose table
or setup it names in its file name (``costs_table3.png`` → table3, ``svhn_cnn8.png`` → table2); a figure that names
none goes to every tables run of the call. Re-logging unchanged files changes nothing; changed files
replace the run, as for jobs.

A tables run is one per (table, tables folder, scale and fidelity): its run key names the scale and fidelity
that the folder's ``table*.csv`` were built at and a hash of the folder's absolute path, so one tracking
server holds the tables of every scale and results folder side by side, and logging the same folder again
replaces only its own runs. (Runs of the older key ``tables``, one per experiment, are deleted when the
folder they name is logged again.)

The claims' verdicts (``claims.csv``) are also what the UI shows of the run without opening a file: its
metrics ``claims/holds``, ``claims/fails``, ``claims/not_measured`` count the checks of that table, one tag
``claims.<claim>.<setup>.<method>`` per check says its verdict and measured statistic, and the run's
description (``mlflow.note.content``) lists them.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.accuracy import format_statistic
from .publish import LogResult, publish, runs_with_key
from .record import KEY_TAG, KIND_TAG, MAX_TAG_VALUE, Artifact, MetricPoint, RunRecord
from .retry import retrying
from .store import open_client
from .uri import TrackingError, experiment_artifact_location, resolve_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

TABLE_FILE = re.compile(r"^(table[2-5])\.(csv|md|tex)$")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
LEGACY_RUN_KEY = "tables"
TABLES_DIR_TAG = "mebqat.tables_dir"
TABLES = ("table2", "table3", "table4", "table5")
VERDICTS = ("holds", "fails", "not measured")
NOTE_TAG = "mlflow.note.content"


def _setups(table: str) -> tuple[str, ...]:
    from ..core.config import available_tables, load_table_setups

    return tuple(load_table_setups(table)["setups"]) if table in available_tables() else ()


def _named_tables(figure: Path) -> list[str]:
    parts = set(re.split(r"[_\-.]", figure.stem))
    return [t for t in TABLES if t in parts or any(s in figure.stem for s in _setups(t))]


def collect_tables(
    tables_dir: Path, figures_dir: Path | None = None, claims: tuple[Path, ...] = ()
) -> dict[str, list[Artifact]]:
    """Artifacts per table experiment (the claims' verdicts go to every one)."""
    if not tables_dir.is_dir():
        raise TrackingError(f"tables directory {tables_dir} does not exist")
    grouped: dict[str, list[Artifact]] = {}
    for path in sorted(tables_dir.iterdir()):
        if match := TABLE_FILE.match(path.name):
            grouped.setdefault(match.group(1), []).append(Artifact(path, "tables"))
    if not grouped:
        raise TrackingError(f"no table files (table2.csv, table4.md, ...) in {tables_dir}; build the tables first")
    if figures_dir is not None:
        if not figures_dir.is_dir():
            raise TrackingError(f"figures directory {figures_dir} does not exist")
        with_tables = sorted(grouped)
        for path in sorted(figures_dir.iterdir()):
            if path.suffix in FIGURE_SUFFIXES:
                for table in _named_tables(path) or with_tables:
                    grouped.setdefault(table, []).append(Artifact(path, "figures"))
    for path in claims:
        if not path.is_file():
            raise TrackingError(f"claims file {path} does not exist; run `mebqat tables claims` first")
        for artifacts in grouped.values():
            artifacts.append(Artifact(path, "claims"))
    return grouped


def tables_identity(tables_dir: Path) -> dict[str, str]:
    """What the tables of ``tables_dir`` are of: the scale and fidelity in their csv files' columns (several
    joined by ``+``; absent when no csv says), and the folder itself (absolute)."""
    found: dict[str, set[str]] = {"scale": set(), "fidelity": set()}
    for path in sorted(tables_dir.glob("table*.csv")):
        if TABLE_FILE.match(path.name):
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    for column, values in found.items():
                        if row.get(column):
                            values.add(row[column])
    identity = {column: "+".join(sorted(values)) for column, values in found.items() if values}
    identity["tables_dir"] = str(tables_dir)
    return identity


def tables_run_key(identity: dict[str, str]) -> str:
    """``tables/<scale>-<fidelity>/<hash of the folder>``, e.g. ``tables/smoke-official/3f0c9a1b2d4e``."""
    level = "-".join(identity[k] for k in ("scale", "fidelity") if k in identity) or "unknown"
    return f"tables/{level}/{hashlib.sha256(identity['tables_dir'].encode()).hexdigest()[:12]}"


def _delete_legacy_runs(client: MlflowClient, experiment: str, tables_dir: Path) -> tuple[str, ...]:
    """Runs of the older per-experiment key ``tables`` that were logged from ``tables_dir``."""
    found = retrying(client.get_experiment_by_name, experiment)
    if found is None:
        return ()
    legacy = [
        run
        for run in runs_with_key(client, found.experiment_id, LEGACY_RUN_KEY)
        if run.data.tags.get(TABLES_DIR_TAG) == str(tables_dir)
    ]
    for run in legacy:
        retrying(client.delete_run, run.info.run_id)
    return tuple(run.info.run_id for run in legacy)


def read_claims(claims: tuple[Path, ...]) -> list[dict[str, str]]:
    """The rows of the claims' verdicts among ``claims`` (the .csv file), or none."""
    rows: list[dict[str, str]] = []
    for path in claims:
        if path.suffix == ".csv":
            with path.open(newline="") as handle:
                rows += list(csv.DictReader(handle))
    return rows


def _measured(row: dict[str, str]) -> str:
    """The verdict's number as the claims report prints it, e.g. ``difference -2.91 [-4.94, -0.62] at (FP,FP)``."""
    if not row.get("ours"):
        return row.get("reason", "")[:300]
    statistic = row.get("statistic", "")
    shown = [
        format_statistic(float(row[key]), statistic)
        for key in ("ours", "ci95_low", "ci95_high")
        if row.get(key) not in (None, "")
    ]
    interval = f" [{shown[1]}, {shown[2]}]" if len(shown) == 3 and shown[1] != shown[2] else ""
    where = f" at {row['worst_row']}" if row.get("worst_row") else ""
    return f"{statistic} {shown[0]}{interval}{where}".strip()


def claims_summary(table: str, rows: list[dict[str, str]]) -> tuple[dict[str, str], tuple[MetricPoint, ...]]:
    """Tags and metrics of ``table``'s tables run that say its claims' verdicts (see the module's docstring)."""
    mine = [r for r in rows if r.get("table") == table]
    if not rows:
        return {}, ()
    counts = {v: sum(r["verdict"] == v for r in mine) for v in VERDICTS}
    metrics = tuple(MetricPoint(f"claims/{v.replace(' ', '_')}", float(n), 0) for v, n in counts.items())
    tags = {
        f"claims.{r['claim']}.{r['setup']}.{r['method']}"[:250]: f"{r['verdict']}: {_measured(r)}"[:500] for r in mine
    }
    overall = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    lines = [
        f"**Claims checked on {table}'s runs**: {counts['holds']} hold, {counts['fails']} fail, "
        f"{counts['not measured']} not measured (all tables: {overall['holds']} of {len(rows)} hold). "
        "The full report is the artifact `claims/claims.md`.",
        "",
    ]
    if mine:
        lines += ["| claim | setup | method | verdict | measured |", "|---|---|---|---|---|"]
        lines += [f"| {r['claim']} | {r['setup']} | {r['method']} | {r['verdict']} | {_measured(r)} |" for r in mine]
    note = "\n".join(lines)
    if len(note) > MAX_TAG_VALUE:
        note = note[: MAX_TAG_VALUE - 60].rsplit("\n", 1)[0] + "\n\n… (more in `claims/claims.md`)"
    tags[NOTE_TAG] = note
    return tags, metrics


def log_tables(
    tables_dir: str | Path,
    figures_dir: str | Path | None = None,
    uri: str | None = None,
    claims: tuple[str | Path, ...] = (),
) -> list[LogResult]:
    """Log the table files (and figures, and the claims' verdicts) of ``tables_dir`` as one tables run per
    table experiment, keyed by the folder and the scale and fidelity of its tables (see the module's docstring)."""
    tables_dir = Path(tables_dir).absolute()
    figures = None if figures_dir is None else Path(figures_dir).absolute()
    claim_files = tuple(Path(c).absolute() for c in claims)
    grouped = collect_tables(tables_dir, figures, claim_files)
    verdicts = read_claims(claim_files)
    uri = resolve_uri(uri)
    client = open_client(uri)
    identity = tables_identity(tables_dir)
    run_key = tables_run_key(identity)
    level = "-".join(identity[k] for k in ("scale", "fidelity") if k in identity)
    results = []
    for table, artifacts in sorted(grouped.items()):
        tags = {KEY_TAG: run_key, KIND_TAG: "tables", TABLES_DIR_TAG: str(tables_dir)}
        tags |= {f"mebqat.{k}": identity[k] for k in ("scale", "fidelity") if k in identity}
        if figures is not None:
            tags["mebqat.figures_dir"] = str(figures)
        claim_tags, claim_metrics = claims_summary(table, verdicts)
        record = RunRecord(
            experiment=table,
            run_key=run_key,
            run_name=f"tables · {level}" if level else "tables",
            tags={**tags, **claim_tags},
            metrics=claim_metrics,
            artifacts=tuple(artifacts),
        )
        result = publish(client, record, experiment_artifact_location(uri, table))
        legacy = _delete_legacy_runs(client, table, tables_dir)
        results.append(replace(result, deleted=result.deleted + legacy) if legacy else result)
    return results
