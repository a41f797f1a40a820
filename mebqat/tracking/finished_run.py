"""Reading a finished job's directory (written by ``mebqat train`` + ``mebqat evaluate``) for logging.

Everything MLflow receives comes from these files. A directory is accepted only when it is finished and
consistent: ``metrics.json`` present and valid against its schema, and written for the configuration
that ``config.yaml`` holds (same config hash), so a stale result is never logged under a new job. The files'
names and readers are :mod:`mebqat.core.rundir_layout`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.files import InputError
from ..core.hashing import config_hash
from ..core.rundir_layout import (
    ACCURACY_CSV,
    ACCURACY_FIGURE,
    CONFIG,
    DATA_FINGERPRINT,
    EPISODE_OUTCOMES,
    HISTORY,
    IMAGE_OUTCOMES,
    LOG,
    METRICS,
    SUMMARY,
    RunFiles,
    read_metrics_file,
)
from ..core.schemas import first_violation
from .uri import TrackingError

REQUIRED = (CONFIG, HISTORY, SUMMARY)
ARTIFACTS = (
    METRICS,
    CONFIG,
    LOG,
    SUMMARY,
    HISTORY,
    DATA_FINGERPRINT,
    ACCURACY_CSV,
    ACCURACY_FIGURE,
    IMAGE_OUTCOMES,
    EPISODE_OUTCOMES,
)


@dataclass(frozen=True)
class FinishedRun:
    root: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    run_key: str
    artifacts: tuple[Path, ...]


def _load(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except InputError as err:
        raise TrackingError(str(err)) from None


def read_finished_run(run_dir: str | Path) -> FinishedRun:
    """The files of a finished job, checked; a clear error for anything unfinished or inconsistent."""
    root = Path(run_dir).absolute()
    files = RunFiles(root)
    if not root.is_dir():
        raise TrackingError(f"{root} is not a directory")
    if not files.config.exists():
        raise TrackingError(f"{root} is not a run directory (no {CONFIG})")
    if not files.metrics.exists():
        raise TrackingError(
            f"{root} is not finished (no {METRICS}): run `mebqat evaluate {run_dir}` first; nothing was logged"
        )
    for name in REQUIRED:
        if not (root / name).exists():
            raise TrackingError(f"{root} has {METRICS} but no {name}; nothing was logged")
    config = _load(files.read_config)
    metrics = _load(lambda: read_metrics_file(files.metrics))
    summary = _load(files.read_summary)
    if not isinstance(config.get("job"), dict):
        raise TrackingError(f"{files.config} is not a resolved job configuration (no 'job' section)")
    violation = first_violation(metrics, "metrics")
    if violation:
        raise TrackingError(f"{files.metrics} does not follow its schema {violation}")
    key = config_hash(config)
    for path, recorded in (
        (files.metrics, metrics["provenance"]["config_hash"]),
        (files.summary, summary.get("config_hash", key)),
    ):
        if recorded != key:
            raise TrackingError(
                f"{path} was written for configuration {recorded}, but {CONFIG} is "
                f"{key}: re-run the job; nothing was logged"
            )
    artifacts = tuple(root / name for name in ARTIFACTS if (root / name).is_file())
    return FinishedRun(root, config, metrics, summary, _load(files.read_history), key, artifacts)
