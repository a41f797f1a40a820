"""Attaching the built tables and figures to one run per table experiment (run name ``tables``).

``table{2,3,4,5}.{csv,md,tex}`` go to experiment ``tableN``. A figure goes to the experiments whose table
or setup it names in its file name (``costs_table3.png`` → table3, ``svhn_cnn8.png`` → table2); a figure that names
none goes to every tables run of the call. Re-logging unchanged files changes nothing; changed files
replace the run, as for jobs.
"""

from __future__ import annotations

import re
from pathlib import Path

from .publish import LogResult, publish
from .record import KEY_TAG, KIND_TAG, Artifact, RunRecord
from .store import open_client
from .uri import TrackingError, experiment_artifact_location, resolve_uri

TABLE_FILE = re.compile(r"^(table[2-5])\.(csv|md|tex)$")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
RUN_KEY = "tables"
TABLES = ("table2", "table3", "table4", "table5")


def _setups(table: str) -> tuple[str, ...]:
    from ..core.config import available_tables, load_table_setups

    return tuple(load_table_setups(table)["setups"]) if table in available_tables() else ()


def _named_tables(figure: Path) -> list[str]:
    parts = set(re.split(r"[_\-.]", figure.stem))
    return [t for t in TABLES if t in parts or any(s in figure.stem for s in _setups(t))]


def collect_tables(tables_dir: Path, figures_dir: Path | None = None,
                   claims: tuple[Path, ...] = ()) -> dict[str, list[Artifact]]:
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


def log_tables(tables_dir: str | Path, figures_dir: str | Path | None = None, uri: str | None = None,
               claims: tuple[str | Path, ...] = ()) -> list[LogResult]:
    """Log the table files (and figures, and the claims' verdicts) of ``tables_dir`` as one ``tables`` run per
    table experiment."""
    tables_dir = Path(tables_dir).absolute()
    figures = None if figures_dir is None else Path(figures_dir).absolute()
    grouped = collect_tables(tables_dir, figures, tuple(Path(c).absolute() for c in claims))
    uri = resolve_uri(uri)
    client = open_client(uri)
    results = []
    for table, artifacts in sorted(grouped.items()):
        tags = {KEY_TAG: RUN_KEY, KIND_TAG: "tables", "mebqat.tables_dir": str(tables_dir)}
        if figures is not None:
            tags["mebqat.figures_dir"] = str(figures)
        record = RunRecord(experiment=table, run_key=RUN_KEY, run_name="tables", tags=tags,
                           artifacts=tuple(artifacts))
        results.append(publish(client, record, experiment_artifact_location(uri, table)))
    return results
