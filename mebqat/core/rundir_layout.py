"""The layout of a job's run directory (docs/methods-and-engines.md, "What a job writes"), without torch: the
one place that names its files, checks a training-history record and reads the files back, each error naming
the file.

``engine`` writes the directory (:class:`mebqat.engine.rundir.RunDir` adds the checkpoints, which need
torch), ``tracking`` mirrors it into MLflow, ``tables`` reads its results, and the CLI and the workflow name
its files; all of them take the names from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from .data_fingerprint import DataFingerprint, read_fingerprint, rerun_note, stat_token
from .files import InputError, read_json, read_json_lines, read_yaml

CONFIG = "config.yaml"
"""The resolved job configuration (``mebqat train`` writes it first)."""
LOG = "train.log"
HISTORY = "history.jsonl"
"""One JSON record per trained epoch (see :func:`history_problem`)."""
SUMMARY = "train_summary.json"
"""What the training did (epochs, passes, trained tasks, wall time, config hash)."""
METRICS = "metrics.json"
"""The evaluation's results: a run with this file is finished."""
DATA_FINGERPRINT = "data_fingerprint.json"
"""The data files the run read, by content (:mod:`mebqat.core.data_fingerprint`)."""
STATUS = "job_status.json"
"""Where the job is (:mod:`mebqat.core.jobstatus`)."""
LOCK = ".job.lock"
"""Held by the one command writing the directory (:mod:`mebqat.engine.runlock`); deleted when it ends."""
CHECKPOINTS = "checkpoints"
CHECKPOINT_FILES = {"best": "best.pt", "last": "last.pt"}
ACCURACY_CSV = "accuracy.csv"
ACCURACY_FIGURE = "accuracy.svg"
IMAGE_OUTCOMES = "image_correct.npz"
"""Per-item outcomes of a supervised evaluation: each test image right or wrong, per bitwidth."""
EPISODE_OUTCOMES = "episode_accuracies.npz"
"""Per-item outcomes of a few-shot evaluation: each test task's accuracy, per bitwidth."""


def for_subset(name: str, label: str) -> str:
    """The file an evaluation at a subset of the bitwidths writes instead of ``name``: ``metrics.json`` →
    ``metrics-w2a2_wFPaFP.json`` (``label``: the tasks' labels joined by ``_``; empty for the full set)."""
    stem, dot, extension = name.partition(".")
    return f"{stem}-{label}{dot}{extension}" if label else name


def history_problem(record: Any) -> str | None:
    """What is wrong with one line of ``history.jsonl``, or None."""
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
        return "a history record needs an integer 'epoch'"
    return None


def read_metrics_file(path: str | Path) -> dict[str, Any]:
    """A metrics file (``metrics.json``, or a subset's ``metrics-<tasks>.json``) as it is, not yet checked
    against its schema."""
    return read_json(path, "metrics file")


class RunFiles:
    """The files of the run directory ``root``, and their readers (each raises
    :class:`~mebqat.core.files.InputError` naming the file)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    config = property(lambda self: self.root / CONFIG)
    log = property(lambda self: self.root / LOG)
    history = property(lambda self: self.root / HISTORY)
    metrics = property(lambda self: self.root / METRICS)
    summary = property(lambda self: self.root / SUMMARY)
    status = property(lambda self: self.root / STATUS)
    data_fingerprint = property(lambda self: self.root / DATA_FINGERPRINT)
    lock = property(lambda self: self.root / LOCK)
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    last = property(lambda self: self.checkpoints / CHECKPOINT_FILES["last"])
    best = property(lambda self: self.checkpoints / CHECKPOINT_FILES["best"])

    def checkpoint(self, which: str) -> Path:
        if which not in CHECKPOINT_FILES:
            raise ValueError(f"checkpoint must be 'best' or 'last', got {which!r}")
        return self.checkpoints / CHECKPOINT_FILES[which]

    def read_config(self) -> dict[str, Any]:
        return read_yaml(self.config, "run configuration")

    def read_summary(self) -> dict[str, Any]:
        return read_json(self.summary, "training summary")

    def read_data_fingerprint(self) -> DataFingerprint | None:
        """The data the run read, as recorded (None before its training started, or in a run older than the
        record)."""
        return read_fingerprint(self.data_fingerprint)

    def data_rerun_note(self, root: Path, token: Callable[[Path], str | None] = stat_token) -> str:
        """The workflow's data rerun trigger for this run (:func:`mebqat.core.data_fingerprint.rerun_note`); an
        unreadable record is a change (the job then refuses, or replaces the run)."""
        try:
            recorded = self.read_data_fingerprint()
        except InputError:
            return f"{DATA_FINGERPRINT} unreadable"
        return rerun_note(recorded, root, token)

    def read_history(self) -> list[dict[str, Any]]:
        """Every record of a written history, checked (none when there is no history yet)."""
        if not self.history.exists():
            return []
        return read_json_lines(self.history, "training history", history_problem)

    def history_so_far(self) -> list[dict[str, Any]]:
        """The records of a history a running job may be appending to right now: a line cut short (or
        otherwise unusable) is passed over, not an error."""
        try:
            lines = self.history.read_text().splitlines()
        except OSError:
            return []
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if history_problem(record) is None:
                records.append(record)
        return records

    def append_history(self, record: Mapping[str, Any]) -> None:
        with open(self.history, "a") as handle:
            handle.write(json.dumps(record, allow_nan=False) + "\n")

    def truncate_history(self, epochs: int) -> None:
        """Drop history records of epochs after the checkpoint a resumed run restarts from."""
        kept = [r for r in self.read_history() if r.get("epoch", 0) <= epochs]
        atomic_write(self.history, lambda f: f.write("".join(json.dumps(r) + "\n" for r in kept).encode()))
