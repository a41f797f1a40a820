"""Where a job's CPU time goes: model computation (training steps, validation, evaluation) against the
fixed cost around it (process start, imports, data, the store, checkpoints, logging). Phases accumulate
``time.process_time()`` (CPU seconds of the whole process, every thread); with ``$MEBQAT_TIMING_FILE`` set,
``mebqat run`` writes them there as JSON when it ends (``benchmarks/job_overhead.py`` reads it)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

ENV_VAR = "MEBQAT_TIMING_FILE"
COMPUTE = ("steps", "validation", "evaluation")
_PHASES: dict[str, float] = {}
_MARKS: dict[str, float] = {}


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.process_time()
    try:
        yield
    finally:
        _PHASES[name] = _PHASES.get(name, 0.0) + time.process_time() - started


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
    }


def write_report() -> None:
    path = os.environ.get(ENV_VAR)
    if path:
        Path(path).write_text(json.dumps(report(), indent=1) + "\n")
