"""A finished job's files → the MLflow run that mirrors them (docs/tracking.md, "One run per job").

- experiment: the job's table (``table2``, ``table4``, ``table5``); run name: short enough for the UI's
  runs table, ``setup · method[ · train_task] · seedN`` (scale and fidelity are tags);
- params: the resolved config flattened to dotted keys (``train.optimizer.lr``); strings as they are,
  everything else (numbers, booleans, null, lists) as JSON; and ``data_fingerprint``, the combined SHA-256 of
  the data files the job read (from ``metrics.json``'s provenance, where the evaluation wrote it);
- metrics, named so that MLflow's run page shows the curves first (it draws one section per name prefix
  before ``/``, sections in alphabetical order, unprefixed metrics last): the training curves
  ``curves/train_loss``, ``curves/select_accuracy``, ``curves/lr`` with step = epoch; the headline test
  accuracies, rounded to two decimals for the runs table, ``test/acc_trained_task`` (a dedicated model, at
  the one task it was trained for), ``test/acc_FP`` and ``test/acc_2bit`` (wherever evaluated at (FP,FP) /
  (2,2)); unprefixed, the other per-epoch fields (``best`` as 0/1, ``elapsed_s``), the costs, the totals of
  train_summary.json and the checkpoint selection, at step 0. The accuracy at every bitwidth, with its 95%
  interval and n, is the ``accuracy.csv`` artifact (and ``accuracy.svg``), not one metric per number;
- tags: the run key (config hash), the identity, the stand-in flag, provenance (git commit and dirty
  flag, versions, device, host, the data fingerprint), checkpoint selection and what was not evaluated;
- artifacts: the job's files themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from ..core.registry import data_title
from ..core.tasks import FP_TASK
from .finished_run import FinishedRun
from .record import KEY_TAG, KIND_TAG, Artifact, DatasetRef, MetricPoint, RunRecord
from .uri import TrackingError

SUMMARY_METRICS = ("epochs", "forward_passes", "backward_passes", "best_epoch", "best_score")
CURVES = ("train_loss", "select_accuracy", "lr")
"""History fields drawn first on the run page, as ``curves/<field>``; other numeric fields keep their name."""
HEADLINE_DIGITS = 2
TASK_TAG = "mebqat.task"
"""What the run was trained for, for the runs table: its train task, e.g. ``(4,4)``, or ``all`` (one model)."""
ONE_MODEL = "all"
DATA_PARAM = "data_fingerprint"
"""The param (and ``mebqat.`` tag) holding the combined SHA-256 of the data files the job read."""


def curve_name(field: str) -> str:
    """The metric name of a history field."""
    return f"curves/{field}" if field in CURVES else field


def task_label(job: Mapping[str, Any]) -> str:
    return job.get("train_task") or ONE_MODEL


def as_text(value: Any) -> str:
    """A param or tag value as MLflow stores it: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"optimizer": {"lr": 0.1}}}`` → ``{"train.optimizer.lr": "0.1"}``; an empty section is kept
    as ``"{}"`` so that every key of the file shows."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, name + "."))
        else:
            flat[name] = as_text(value)
    return flat


def data_digest(run: FinishedRun) -> str | None:
    """The combined digest of the data the job read, as its metrics.json records it (None in older runs)."""
    fingerprint = run.metrics["provenance"].get("data_fingerprint") or {}
    return fingerprint.get("digest")


def job_params(run: FinishedRun) -> dict[str, str]:
    """The flattened config and the data fingerprint."""
    digest = data_digest(run)
    return {**flatten_config(run.config), **({DATA_PARAM: digest} if digest else {})}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else None


def history_points(history: list[dict[str, Any]]) -> Iterator[MetricPoint]:
    for record in history:
        for key, value in record.items():
            number = _number(value)
            if key != "epoch" and number is not None:
                yield MetricPoint(curve_name(key), number, record["epoch"])


def headline_accuracies(run: FinishedRun) -> Iterator[tuple[str, float]]:
    """The few accuracies the runs table shows (rounded; the exact ones are in accuracy.csv): a dedicated
    model's at its trained task, and anyone's at (FP,FP) and (2,2) where it was evaluated there."""
    by_task = {f"({r['bits_w']},{r['bits_a']})": r.get("accuracy") for r in run.metrics["results"]}
    trained = run.config["job"].get("train_task")
    for name, task in (("test/acc_trained_task", trained), ("test/acc_FP", str(FP_TASK)), ("test/acc_2bit", "(2,2)")):
        if task is not None and (number := _number(by_task.get(task))) is not None:
            yield name, round(number, HEADLINE_DIGITS)


def _final_points(run: FinishedRun) -> Iterator[tuple[str, float]]:
    metrics = run.metrics
    yield from headline_accuracies(run)
    for key, value in metrics["costs"].items():
        if (number := _number(value)) is not None:
            yield key, number
    for key in SUMMARY_METRICS:
        if (number := _number(run.summary.get(key))) is not None:
            yield key, number
    for key in ("epoch", "accuracy"):
        if (number := _number(metrics.get("selection", {}).get(key))) is not None:
            yield f"selection_{key}", number
    for key in ("count", "queries"):
        if (number := _number(metrics.get("test_tasks", {}).get(key))) is not None:
            yield f"test_tasks_{key}", number


def job_metrics(run: FinishedRun) -> tuple[MetricPoint, ...]:
    points: dict[tuple[str, int], MetricPoint] = {}
    finals = (MetricPoint(key, value, 0) for key, value in _final_points(run))
    for point in (*history_points(run.history), *finals):
        if (point.key, point.step) in points:
            raise TrackingError(f"{run.root}: metric {point.key!r} at step {point.step} comes from two places")
        points[point.key, point.step] = point
    return tuple(points.values())


def job_tags(run: FinishedRun) -> dict[str, str]:
    identity, provenance = run.metrics["identity"], run.metrics["provenance"]
    tags = {
        KEY_TAG: run.run_key,
        KIND_TAG: "job",
        "mebqat.run_dir": str(run.root),
        TASK_TAG: task_label(run.config["job"]),
    }
    values = {**identity, "train_task": run.config["job"].get("train_task")}
    values.update(
        {k: provenance.get(k) for k in ("git_commit", "git_dirty", "python", "device", "hostname", "created")}
    )
    values.update({f"engine.{stage}": engine for stage, engine in (provenance.get("engines") or {}).items()})
    values.update({f"pkg.{name}": version for name, version in (provenance.get("packages") or {}).items()})
    selection = run.metrics.get("selection", {})
    values.update(
        {
            "selection.checkpoint": selection.get("checkpoint"),
            "selection.split": selection.get("split"),
            "accuracy_definition": run.metrics.get("accuracy_definition"),
            "test_tasks.fingerprint": run.metrics.get("test_tasks", {}).get("fingerprint"),
            DATA_PARAM: data_digest(run),
        }
    )
    if run.metrics["not_evaluated"]:
        values["not_evaluated"] = "; ".join(
            f"({e['bits_w']},{e['bits_a']}): {e['reason']}" for e in run.metrics["not_evaluated"]
        )
    tags.update({f"mebqat.{key}": as_text(value) for key, value in values.items() if value is not None})
    if provenance.get("git_commit"):
        tags["mlflow.source.git.commit"] = provenance["git_commit"]  # shown by the MLflow UI
    return tags


def dataset_input(config: Mapping[str, Any], dataset: str, is_standin: bool, stands_for: str | None) -> DatasetRef:
    """The job's dataset as an MLflow input: named as every output names it (stand-ins say so), its digest
    the hash of the job's data settings (the data root excluded: moving the data changes nothing)."""
    settings = {k: v for k, v in config["data"].items() if k != "root"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    name = data_title(dataset, is_standin, stands_for)
    source = json.dumps({"dataset": dataset, "stand_in_for": stands_for, "settings": settings}, sort_keys=True)
    return DatasetRef(name=name, digest=digest, source=source)


def run_name(job: Mapping[str, Any]) -> str:
    """``svhn_cnn8 · qat · (4,4) · seed0``, ``svhn_cnn8 · mebqat · seed0``."""
    parts = [job["setup"], job["method"], *([job["train_task"]] if job.get("train_task") else []), f"seed{job['seed']}"]
    return " · ".join(str(p) for p in parts)


def job_record(run: FinishedRun) -> RunRecord:
    identity = run.metrics["identity"]
    return RunRecord(
        experiment=identity["table"],
        run_key=run.run_key,
        run_name=run_name(run.config["job"]),
        tags=job_tags(run),
        params=job_params(run),
        metrics=job_metrics(run),
        artifacts=tuple(Artifact(path) for path in run.artifacts),
        inputs=(dataset_input(run.config, identity["dataset"], identity["is_standin"], identity["stands_for"]),),
    )
