"""A job's directory: resolved config, checkpoints, log, training history, metrics (SPEC §6).

Every file is written to a temporary name and renamed into place, so a killed job never leaves a
half-written checkpoint or metrics file behind.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml

from ..atomic import atomic_write
from ..core.config import ConfigError
from ..core.hashing import config_hash


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=2, sort_keys=False) + "\n").encode()))


class RunDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    config = property(lambda self: self.root / "config.yaml")
    log = property(lambda self: self.root / "train.log")
    history = property(lambda self: self.root / "history.jsonl")
    metrics = property(lambda self: self.root / "metrics.json")
    summary = property(lambda self: self.root / "train_summary.json")
    last = property(lambda self: self.root / "checkpoints" / "last.pt")
    best = property(lambda self: self.root / "checkpoints" / "best.pt")

    def checkpoint(self, which: str) -> Path:
        if which not in ("best", "last"):
            raise ValueError(f"checkpoint must be 'best' or 'last', got {which!r}")
        return self.best if which == "best" else self.last

    def prepare(self, config: Mapping[str, Any], replace_stale: bool = False) -> None:
        """Create the directory and record the config. A directory that holds a run of another config is
        refused, or (``replace_stale``) deleted first."""
        if self.config.exists():
            existing = yaml.safe_load(self.config.read_text())
            if config_hash(existing) != config_hash(config):
                if not replace_stale:
                    raise ConfigError(f"{self.root} holds a run of another configuration (hash "
                                      f"{config_hash(existing)} ≠ {config_hash(config)}); use a new --out "
                                      f"directory, or --replace-stale to delete it")
                shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.config, lambda f: f.write(yaml.safe_dump(dict(config), sort_keys=False).encode()))

    def read_config(self) -> dict[str, Any]:
        if not self.config.exists():
            raise FileNotFoundError(f"{self.root} is not a run directory (no config.yaml)")
        return yaml.safe_load(self.config.read_text())

    def save_checkpoint(self, path: Path, state: Mapping[str, Any]) -> None:
        atomic_write(path, lambda f: torch.save(dict(state), f))

    def load_checkpoint(self, path: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # a truncated or foreign file
            raise ConfigError(f"cannot read checkpoint {path}: {err}") from None
        if state.get("config_hash") != config_hash(config):
            raise ConfigError(f"checkpoint {path} was written by another configuration "
                              f"({state.get('config_hash')} ≠ {config_hash(config)})")
        return state

    def append_history(self, record: Mapping[str, Any]) -> None:
        with open(self.history, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def read_history(self) -> list[dict[str, Any]]:
        if not self.history.exists():
            return []
        return [json.loads(line) for line in self.history.read_text().splitlines() if line.strip()]

    def truncate_history(self, epochs: int) -> None:
        """Drop history records of epochs after the checkpoint a resumed run restarts from."""
        kept = [r for r in self.read_history() if r.get("epoch", 0) <= epochs]
        atomic_write(self.history, lambda f: f.write("".join(json.dumps(r) + "\n" for r in kept).encode()))


def job_logger(run: RunDir, name: str = "mebqat.job") -> logging.Logger:
    """A logger writing to the run's train.log and to stderr."""
    logger = logging.getLogger(f"{name}.{run.root.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
        for handler in (logging.FileHandler(run.log), logging.StreamHandler()):
            handler.setFormatter(fmt)
            logger.addHandler(handler)
    return logger
