"""What one MLflow run should hold, as plain data, built before any store is touched.

A record is compared with the store by its content hash (a tag on the run): the same files give the same
hash, so re-logging them is recognised and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .uri import TrackingError

KEY_TAG = "mebqat.run_key"
KIND_TAG = "mebqat.kind"
CONTENT_TAG = "mebqat.content_hash"
MAX_PARAM_VALUE = 6000  # MLflow's limits (mlflow.utils.validation)
MAX_TAG_VALUE = 8000
MAX_KEY = 250


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int


@dataclass(frozen=True)
class Artifact:
    path: Path
    directory: str | None = None  # artifact sub-directory; None = the run's artifact root


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as an MLflow run input (the UI's Dataset column): what it is, not its content."""

    name: str
    digest: str
    source: str
    context: str = "training"


@dataclass(frozen=True)
class RunRecord:
    experiment: str
    run_key: str
    run_name: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: tuple[MetricPoint, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    inputs: tuple[DatasetRef, ...] = ()

    def __post_init__(self) -> None:
        for kind, entries, limit in (("param", self.params, MAX_PARAM_VALUE), ("tag", self.tags, MAX_TAG_VALUE)):
            for key, value in entries.items():
                if len(key) > MAX_KEY:
                    raise TrackingError(f"{kind} name {key[:60]!r}... is longer than MLflow's {MAX_KEY} characters")
                if len(value) > limit:
                    raise TrackingError(
                        f"{kind} {key!r} is {len(value)} characters long; MLflow keeps at most "
                        f"{limit} (the full value is in the run's files)"
                    )

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        body = {
            "experiment": self.experiment,
            "run_key": self.run_key,
            "run_name": self.run_name,
            "tags": self.tags,
            "params": self.params,
            "metrics": [[m.key, m.value, m.step] for m in self.metrics],
            "artifacts": [[a.directory, a.path.name, _file_digest(a.path)] for a in self.artifacts],
            "inputs": [[d.name, d.digest, d.source, d.context] for d in self.inputs],
        }
        digest.update(json.dumps(body, sort_keys=True).encode())
        return digest.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
