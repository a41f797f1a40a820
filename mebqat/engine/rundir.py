"""A job's directory as the engine writes it: resolved config, checkpoints, log, training history, metrics
(docs/methods-and-engines.md, "What a job writes"). Its layout (file names, the history's records, reading the
files back) is :mod:`mebqat.core.rundir_layout`'s; this module adds what needs torch (the checkpoints) and the
writing.

Every file is written to a temporary name and renamed into place, so a killed job never leaves a
half-written checkpoint or metrics file behind; the temporary files a kill leaves are removed when the
same job starts again. Everything read back is checked, and a damaged file is one error that names it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import torch
import yaml

from ..atomic import atomic_write, is_temporary
from ..core.config import ConfigError, validate_config
from ..core.data_fingerprint import DataFiles, describe_changes, write_fingerprint
from ..core.files import InputError
from ..core.hashing import config_hash
from ..core.rundir_layout import CONFIG, LOCK, RunFiles
from .runlock import run_lock, stale_text, taken_over

CHECKPOINT_FORMAT = 2
"""2: the engine's own optimizer and schedule state (engine/optim.py)."""


def write_json(path: Path, data: Any) -> None:
    atomic_write(
        path, lambda f: f.write((json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n").encode())
    )


class RunDir(RunFiles):
    """A run directory as the engine prepares and writes it, with its checkpoints."""

    def check_writable(self) -> None:
        """Refuse, before anything is written, an output that is a file or a place that cannot be written."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--out {self.root} is an existing file, not a directory: choose a directory")
        existing = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise ConfigError(
                f"--out {self.root}: {existing} is a file, not a directory: choose an --out whose "
                f"parents are directories"
            )
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(
                f"--out {self.root}: {existing} is not writable (permission denied or a read-only "
                f"file system): choose another --out"
            )

    def existing_config(self) -> dict[str, Any] | None:
        return self.read_config() if self.config.exists() else None

    def prepare(
        self, config: Mapping[str, Any], replace_stale: bool = False, data: DataFiles | None = None
    ) -> str | None:
        """Create the directory and record the config and the data the job reads (``data``). A directory that
        holds a run of another config, or of data whose content changed since, is refused, or
        (``replace_stale``) deleted first: the reason is returned (None when nothing was deleted). Temporary
        files of writes a kill interrupted are removed."""
        self.check_writable()
        note = self.data_rerun_note(data.root) if data is not None else ""  # before any change: what the workflow saw
        replaced = self._replacement_reason(config, data, replace_stale)
        if replaced is not None:
            self._empty()
        self.root.mkdir(parents=True, exist_ok=True)
        self.remove_leftovers()
        atomic_write(self.config, lambda f: f.write(yaml.safe_dump(dict(config), sort_keys=False).encode()))
        if data is not None:
            write_fingerprint(self.data_fingerprint, data.record(self.read_data_fingerprint(), note))
        return replaced

    def _replacement_reason(self, config: Mapping[str, Any], data: DataFiles | None, replace_stale: bool) -> str | None:
        """Why the run here cannot be continued by this job (None: it can); refused without ``replace_stale``."""
        existing = self.existing_config()
        reason: str | None
        if existing is not None and config_hash(existing) != config_hash(config):
            reason = (
                f"{self.root} holds a run of another configuration (hash {config_hash(existing)} ≠ "
                f"{config_hash(config)})"
            )
            fix = "use a new --out directory, or --replace-stale to delete it"
        elif data is not None and (reason := self._data_change(data)) is not None:
            fix = "restore the data, or rerun the job from scratch on the data as they are now with --replace-stale"
        else:
            return None
        if not replace_stale:
            raise ConfigError(f"{reason}; {fix}")
        return reason

    def _data_change(self, data: DataFiles) -> str | None:
        """How the data files recorded here differ from those now, None when they do not."""
        try:
            changes = data.changes_since(self.read_data_fingerprint())
        except InputError as err:
            return str(err)
        return describe_changes(self.root, changes) if changes else None

    def _empty(self) -> None:
        """Delete everything in the directory but the lock this job holds."""
        for path in self.root.iterdir():
            if path.name == LOCK:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    @contextlib.contextmanager
    def claimed(self, command: str, create: bool = True) -> Iterator[None]:
        """Hold the directory's lock for ``command`` (:mod:`mebqat.engine.runlock`; another live job there is
        refused at once), and log a dead job's lock taken over. ``create``: make the directory (a training's
        --out), after refusing an --out that cannot be one; else lock only an existing one."""
        if create:
            self.check_writable()
        with run_lock(self.root, command, create=create):
            stale = taken_over(self.root)
            if stale is not None and (create or self.config.is_file()):  # train.log only in a run directory
                job_logger(self).info(stale_text(stale))
            yield

    def remove_leftovers(self) -> list[Path]:
        """Delete the temporary files interrupted writes left here (never read as data): what a training
        (:meth:`prepare`) and an evaluation do once the directory is known to be the job's, under its lock
        (no other job's write can be in flight)."""
        found = [
            p
            for folder in (self.root, self.checkpoints)
            if folder.is_dir()
            for p in folder.iterdir()
            if p.is_file() and is_temporary(p)
        ]
        for path in found:
            path.unlink(missing_ok=True)
        return found

    def read_config(self) -> dict[str, Any]:
        if not self.config.exists():
            raise ConfigError(f"{self.root} is not a run directory (no {CONFIG}): give the --out of a `mebqat train`")
        config = super().read_config()
        if "job" not in config:
            raise ConfigError(
                f"run configuration {self.config} is not a resolved job configuration (no 'job' "
                f"section): was it edited? Re-run the job into a new directory"
            )
        try:
            validate_config(config)
        except ValueError as err:
            raise ConfigError(f"run configuration {self.config}: {err}") from None
        return config

    def save_checkpoint(self, path: Path, state: Mapping[str, Any]) -> None:
        atomic_write(path, lambda f: torch.save({"format": CHECKPOINT_FORMAT, **state}, f))

    def load_checkpoint(self, path: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        if not path.is_file():
            raise ConfigError(f"checkpoint {path} does not exist: the training did not reach it")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # a truncated or foreign file
            raise ConfigError(
                f"checkpoint {path} cannot be read ({type(err).__name__}: "
                f"{' '.join(str(err).split())[:200]}): it is damaged; delete it (training resumes "
                f"from scratch) or re-run with --replace-stale"
            ) from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(
                f"checkpoint {path} was written by another version of mebqat (format "
                f"{state.get('format') if isinstance(state, dict) else '?'}, expected "
                f"{CHECKPOINT_FORMAT}): re-run the job with --replace-stale"
            )
        if state.get("config_hash") != config_hash(config):
            raise ConfigError(
                f"checkpoint {path} was written by another configuration "
                f"({state.get('config_hash')} ≠ {config_hash(config)})"
            )
        return state


P = ParamSpec("P")
R = TypeVar("R")


def holding_run_dir(command: str, create: bool = True) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated function (whose ``out`` argument is the run directory) under
    :meth:`RunDir.claimed`: the directory's lock is held for the whole call."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            out = signature.bind(*args, **kwargs).arguments["out"]
            with RunDir(out).claimed(command, create=create):
                return function(*args, **kwargs)

        return wrapper

    return decorate


class _LogFile(logging.FileHandler):
    """train.log: a line the disk refuses (full) is lost there but still shown on stderr, without the traceback
    logging prints for a failed handler."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def job_logger(run: RunDir, name: str = "mebqat.job") -> logging.Logger:
    """A logger writing to the run's train.log and to stderr."""
    logger = logging.getLogger(f"{name}.{run.root.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if any(isinstance(h, logging.FileHandler) and not os.path.exists(h.baseFilename) for h in logger.handlers):
        for handler in list(logger.handlers):  # the log was deleted with a replaced run: open the new one
            logger.removeHandler(handler)
            handler.close()
    if not logger.handlers:
        fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
        for handler in (_LogFile(run.log), logging.StreamHandler()):
            handler.setFormatter(fmt)
            logger.addHandler(handler)
    return logger
