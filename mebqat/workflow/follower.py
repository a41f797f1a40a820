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
        # its own session: Ctrl-C reaches the jobs at once but the follower only through stop_follower, so it
        # is still there to record the jobs that end KILLED a moment later
        return subprocess.Popen(
            [sys.executable, "-m", "mebqat", "track", "follow", str(runs), "--uri", uri, "--parent", str(os.getpid())],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_follower(process: subprocess.Popen | None, log: str | Path, timeout: float = STOP_TIMEOUT_S) -> int | None:
    """SIGTERM, then wait for its last pass; its exit code (None if there was none to stop). A follower that
    failed is reported on stderr (the store still holds every finished job: the track_jobs rule)."""
    if process is None:
        return None
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    code = process.wait()
    if code != 0:
        print(
            f"the MLflow follower ended with exit code {code}: see {log} (finished jobs are logged by the "
            f"track_jobs rule; run `mebqat track follow <results>/runs --once` to log the others)",
            file=sys.stderr,
        )
    return code
