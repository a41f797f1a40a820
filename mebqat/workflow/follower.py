"""The workflow's MLflow follower: one ``mebqat track follow`` process beside the jobs, started by the
Snakefile's ``onstart`` hook and stopped (after a last pass) by ``onsuccess``/``onerror``, so that the jobs
(``mebqat run --tracking follower``) never import MLflow and their runs are still live in the UI. The
``track_jobs`` rule makes the store complete even without it (``snakemake --no-hooks``): it is a final pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

STOP_TIMEOUT_S = 300.0


def start_follower(runs: str | Path, uri: str, log: str | Path) -> subprocess.Popen:
    """Start the follower of ``runs`` (the run directories' parent) into ``uri``, logging to ``log``; it
    stops by itself if this process (Snakemake) ends without stopping it."""
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "mebqat", "track", "follow", str(runs), "--uri", uri,
                                 "--parent", str(os.getpid())], stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def stop_follower(process: subprocess.Popen | None, timeout: float = STOP_TIMEOUT_S) -> int | None:
    """SIGTERM, then wait for its last pass; its exit code (None if there was none to stop)."""
    if process is None:
        return None
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
