"""Where a job's CPU time goes: model computation (training steps, validation, evaluation) against the
fixed cost around it (process start, imports, data, the store, checkpoints, logging). Phases accumulate
``time.process_time()`` (CPU seconds of the whole process, every thread); with ``$MEBQAT_TIMING_FILE`` set,
``mebqat run`` writes them there as JSON when it ends (``benchmarks/job_overhead.py`` reads it)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
ENV_VAR = "MEBQAT_TIMING_FILE"
COMPUTE = ("steps", "validation", "evaluation")
_PHASES: dict[str, float] = {}
_MARKS: dict[str, float] = {}
_WALL: dict[str, float] = {}
_COUNTS: dict[str, int] = {}


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.process_time()
    try:
        yield
    finally:
        _PHASES[name] = _PHASES.get(name, 0.0) + time.process_time() - started


@contextlib.contextmanager
def wall(name: str) -> Iterator[None]:
    """Accumulate wall-clock seconds under ``name`` and count the intervals (``<name>_count``)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _WALL[name] = _WALL.get(name, 0.0) + time.perf_counter() - started
        _COUNTS[f"{name}_count"] = _COUNTS.get(f"{name}_count", 0) + 1


def timed(items: Iterable[T], name: str) -> Iterator[T]:
    """``items`` unchanged, with the wait for each one accumulated under ``wall(name)``."""
    iterator = iter(items)
    while True:
        with wall(name):
            try:
                item = next(iterator)
            except StopIteration:
                break
        yield item
    _COUNTS[f"{name}_count"] -= 1  # the wait that found the end brought no item


def note(name: str, value: int) -> None:
    """Record a count, e.g. the bytes a dataset holds in memory."""
    _COUNTS[name] = value


def mark(name: str) -> None:
    """The process CPU time at a point (the first time only), e.g. the first training step."""
    _MARKS.setdefault(name, time.process_time())


def report() -> dict[str, float]:
    total = time.process_time()
    compute = sum(_PHASES.get(p, 0.0) for p in COMPUTE)
    return {
        "total_cpu_s": total,
        "compute_cpu_s": compute,
        "fixed_cpu_s": total - compute,
        **{f"{k}_cpu_s": v for k, v in _PHASES.items()},
        **{f"at_{k}_cpu_s": v for k, v in _MARKS.items()},
        **{f"{k}_wall_s": v for k, v in _WALL.items()},
        **_COUNTS,
    }


def write_report() -> None:
    path = os.environ.get(ENV_VAR)
    if path:
        Path(path).write_text(json.dumps(report(), indent=1) + "\n")
