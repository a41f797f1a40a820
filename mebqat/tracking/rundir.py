"""Reading a finished job's directory (written by ``mebqat train`` + ``mebqat evaluate``) for logging.

Everything MLflow receives comes from these files. A directory is accepted only when it is finished and
consistent: ``metrics.json`` present and valid against its schema, and written for the configuration
that ``config.yaml`` holds (same config hash), so a stale result is never logged under a new job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.files import InputError, read_json, read_json_lines, read_yaml
from ..core.hashing import config_hash
from ..core.schemas import first_violation
from .uri import TrackingError

REQUIRED = ("config.yaml", "history.jsonl", "train_summary.json")
ARTIFACTS = ("metrics.json", "config.yaml", "train.log", "train_summary.json", "history.jsonl",
             "accuracy.csv", "accuracy.svg", "image_correct.npz", "episode_accuracies.npz")


@dataclass(frozen=True)
class FinishedRun:
    root: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    run_key: str
    artifacts: tuple[Path, ...]


def _load(path: Path, read: Any, what: str) -> Any:
    try:
        return read(path, what)
    except InputError as err:
        raise TrackingError(str(err)) from None


def _history_problem(record: Any) -> str | None:
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
        return "a history record needs an integer 'epoch'"
    return None


def _history(path: Path) -> list[dict[str, Any]]:
    try:
        return read_json_lines(path, "training history", _history_problem)
    except InputError as err:
        raise TrackingError(str(err)) from None


def read_finished_run(run_dir: str | Path) -> FinishedRun:
    """The files of a finished job, checked; a clear error for anything unfinished or inconsistent."""
    root = Path(run_dir).absolute()
    if not root.is_dir():
        raise TrackingError(f"{root} is not a directory")
    if not (root / "config.yaml").exists():
        raise TrackingError(f"{root} is not a run directory (no config.yaml)")
    if not (root / "metrics.json").exists():
        raise TrackingError(f"{root} is not finished (no metrics.json): run `mebqat evaluate {run_dir}` first; "
                            "nothing was logged")
    for name in REQUIRED:
        if not (root / name).exists():
            raise TrackingError(f"{root} has metrics.json but no {name}; nothing was logged")
    config = _load(root / "config.yaml", read_yaml, "run configuration")
    metrics = _load(root / "metrics.json", read_json, "metrics file")
    summary = _load(root / "train_summary.json", read_json, "training summary")
    if not isinstance(config.get("job"), dict):
        raise TrackingError(f"{root / 'config.yaml'} is not a resolved job configuration (no 'job' section)")
    violation = first_violation(metrics, "metrics")
    if violation:
        raise TrackingError(f"{root / 'metrics.json'} does not follow its schema {violation}")
    key = config_hash(config)
    for name, recorded in (("metrics.json", metrics["provenance"]["config_hash"]),
                           ("train_summary.json", summary.get("config_hash", key))):
        if recorded != key:
            raise TrackingError(f"{root / name} was written for configuration {recorded}, but config.yaml is "
                                f"{key}: re-run the job; nothing was logged")
    artifacts = tuple(root / name for name in ARTIFACTS if (root / name).is_file())
    return FinishedRun(root, config, metrics, summary, _history(root / "history.jsonl"), key, artifacts)
