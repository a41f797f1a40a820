"""A finished job's files → the MLflow run that mirrors them (SPEC §6).

- experiment: the job's table (``table2``, ``table4``, ``table5``); run name: the readable cell name
  ``setup/method[/train_task]/scale/fidelity/seedN``;
- params: the resolved config flattened to dotted keys (``train.optimizer.lr``); strings as they are,
  everything else (numbers, booleans, null, lists) as JSON;
- metrics: the history curves with step = epoch (every numeric field; booleans as 0/1), the final
  per-bitwidth results (``acc_w4a4``, ``ci95_w4a4``, ``n_w4a4``, ... ``acc_wFPaFP``), the costs, the
  totals of train_summary.json and the checkpoint selection, all at step 0;
- tags: the run key (config hash), the identity, the stand-in flag, provenance (git commit and dirty
  flag, versions, device, host), checkpoint selection and what was not evaluated;
- artifacts: the job's files themselves.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator, Mapping

from ..core.config import dataset_title
from .record import KEY_TAG, KIND_TAG, Artifact, DatasetRef, MetricPoint, RunRecord
from .rundir import FinishedRun
from .uri import TrackingError

SUMMARY_METRICS = ("epochs", "forward_passes", "backward_passes", "best_epoch", "best_score")
RESULT_NAMES = {"accuracy": "acc"}


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


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else None


def history_points(history: list[dict[str, Any]]) -> Iterator[MetricPoint]:
    for record in history:
        for key, value in record.items():
            number = _number(value)
            if key != "epoch" and number is not None:
                yield MetricPoint(key, number, record["epoch"])


def _final_points(run: FinishedRun) -> Iterator[tuple[str, float]]:
    metrics = run.metrics
    for result in metrics["results"]:
        task = f"w{result['bits_w']}a{result['bits_a']}"
        for key, value in result.items():
            number = None if key in ("bits_w", "bits_a") or isinstance(value, bool) else _number(value)
            if number is not None:
                yield f"{RESULT_NAMES.get(key, key)}_{task}", number
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
    tags = {KEY_TAG: run.run_key, KIND_TAG: "job", "mebqat.run_dir": str(run.root)}
    values = {**identity, "train_task": run.config["job"].get("train_task")}
    values.update({k: provenance.get(k) for k in ("git_commit", "git_dirty", "python", "device", "hostname",
                                                  "created")})
    values.update({f"engine.{stage}": engine for stage, engine in (provenance.get("engines") or {}).items()})
    values.update({f"pkg.{name}": version for name, version in (provenance.get("packages") or {}).items()})
    selection = run.metrics.get("selection", {})
    values.update({"selection.checkpoint": selection.get("checkpoint"), "selection.split": selection.get("split"),
                   "accuracy_definition": run.metrics.get("accuracy_definition"),
                   "test_tasks.fingerprint": run.metrics.get("test_tasks", {}).get("fingerprint")})
    if run.metrics["not_evaluated"]:
        values["not_evaluated"] = "; ".join(f"({e['bits_w']},{e['bits_a']}): {e['reason']}"
                                            for e in run.metrics["not_evaluated"])
    tags.update({f"mebqat.{key}": as_text(value) for key, value in values.items() if value is not None})
    if provenance.get("git_commit"):
        tags["mlflow.source.git.commit"] = provenance["git_commit"]  # shown by the MLflow UI
    return tags


def dataset_input(config: Mapping[str, Any], dataset: str, is_standin: bool, stands_for: str | None) -> DatasetRef:
    """The job's dataset as an MLflow input: named as every output names it (stand-ins say so), its digest
    the hash of the job's data settings (the data root excluded: moving the data changes nothing)."""
    settings = {k: v for k, v in config["data"].items() if k != "root"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    name = dataset_title({"dataset": dataset, "is_standin": is_standin, "stands_for": stands_for})
    source = json.dumps({"dataset": dataset, "stand_in_for": stands_for, "settings": settings}, sort_keys=True)
    return DatasetRef(name=name, digest=digest, source=source)


def run_name(job: Mapping[str, Any]) -> str:
    task = f"/{job['train_task']}" if job.get("train_task") else ""
    return f"{job['setup']}/{job['method']}{task}/{job['scale']}/{job['fidelity']}/seed{job['seed']}"


def job_record(run: FinishedRun) -> RunRecord:
    identity = run.metrics["identity"]
    return RunRecord(experiment=identity["table"], run_key=run.run_key,
                     run_name=run_name(run.config["job"]), tags=job_tags(run), params=flatten_config(run.config),
                     metrics=job_metrics(run), artifacts=tuple(Artifact(path) for path in run.artifacts),
                     inputs=(dataset_input(run.config, identity["dataset"], identity["is_standin"],
                                           identity["stands_for"]),))
