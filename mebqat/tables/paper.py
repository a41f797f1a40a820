"""The paper's numbers (``mebqat/resources/paper_tables``): accuracy tables in long format and the
Table 3 text. An empty accuracy means unknown (lost in extraction, or a "-" in the paper), never zero."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from ..core.config import RESOURCES

PAPER_DIR = RESOURCES / "paper_tables"
PAPER_FILES = {
    "table2": "table2_bitwidth_adaptation.csv",
    "table3": "table3_costs.csv",
    "table4": "table4_fewshot_maml.csv",
    "table5": "table5_fewshot_protonet.csv",
}
KEY = ["table", "dataset", "model", "method", "bits_w", "bits_a", "shots", "ways"]

# What a paper cell holds: a number, a "-" (the paper did not evaluate it), or a number lost in extraction.
PAPER_VALUE, PAPER_DASH, PAPER_LOST = "value", "not evaluated", "lost"


def _path(table: str) -> Path:
    try:
        return PAPER_DIR / PAPER_FILES[table]
    except KeyError:
        raise ValueError(f"no paper numbers for {table!r}; known: {', '.join(PAPER_FILES)}") from None


def _cell_status(accuracy: float, source: str) -> str:
    if pd.notna(accuracy):
        return PAPER_VALUE
    return PAPER_DASH if "'-'" in source else PAPER_LOST


@functools.cache
def _accuracy_table(table: str) -> pd.DataFrame:
    frame = pd.read_csv(_path(table), dtype=str, keep_default_na=False)
    missing = set(KEY + ["accuracy", "source"]) - set(frame.columns)
    if missing:
        raise ValueError(f"{_path(table)}: missing columns {sorted(missing)}")
    frame["paper_accuracy"] = pd.to_numeric(frame["accuracy"].replace("", None), errors="raise")
    frame["paper_cell"] = [_cell_status(a, s) for a, s in zip(frame["paper_accuracy"], frame["source"], strict=True)]
    duplicated = frame.duplicated(KEY)
    if duplicated.any():
        raise ValueError(f"{_path(table)}: repeated cells {frame.loc[duplicated, KEY].values.tolist()}")
    return frame[KEY + ["paper_accuracy", "paper_cell"]]


def paper_accuracies(table: str) -> pd.DataFrame:
    """The paper's cells of an accuracy table: the join key (all strings; shots/ways "" outside the
    few-shot tables), ``paper_accuracy`` (float, NaN if unknown) and ``paper_cell`` (value / not
    evaluated / lost)."""
    return _accuracy_table(table).copy()


@functools.cache
def _costs() -> pd.DataFrame:
    frame = pd.read_csv(_path("table3"), dtype=str, keep_default_na=False)
    missing = {"method", "metric", "value", "inferred_value", "source"} - set(frame.columns)
    if missing:
        raise ValueError(f"{_path('table3')}: missing columns {sorted(missing)}")
    return frame


def paper_costs() -> pd.DataFrame:
    """Table 3 as the paper text has it: ``method`` (Dedicated QAT, AdaBits/ApDNN, MEBQAT), ``metric``
    (training computation cost, storage cost), ``value`` (surviving text, often empty) and
    ``inferred_value`` (a reconstruction, not a fact)."""
    return _costs().copy()
