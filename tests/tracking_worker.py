"""Concurrency test workers, run in separate processes: a module of their own, so that a worker imports only
what logging needs. The barrier arrives through the pool's initializer, the only way a multiprocessing
Barrier may be shared with pool workers."""

from __future__ import annotations

import time
from typing import Any

_barrier: Any = None


def init_worker(barrier: Any) -> None:
    global _barrier
    _barrier = barrier
    import mlflow  # noqa: F401  slow imports before the barrier, so the writers really start together

    import mebqat.engine.provenance  # noqa: F401
    import mebqat.tracking  # noqa: F401


def log_after_barrier(run_dir: str, uri: str) -> tuple[str, str, str, float]:
    from mebqat.tracking import log_run

    _barrier.wait(timeout=600)
    start = time.perf_counter()
    result = log_run(run_dir, uri)
    return run_dir, result.action, result.run_id, time.perf_counter() - start
