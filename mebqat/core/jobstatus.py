"""A job's own account of where it is, in its run directory (``job_status.json``), for whoever mirrors the
directory into MLflow while the job runs (``mebqat track follow``): which execution of the job this is, when
it started, the last epoch whose checkpoint is on disk, and how it ended (finished, failed or killed, with
the reason). Written atomically by the job at its start, after each durable epoch and at its end; read
without torch or MLflow. A job killed with SIGKILL leaves ``running`` behind: its next execution (a
resume) replaces the file with a new ``attempt``.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..atomic import atomic_write
from .rundir_layout import RunFiles

STATES = ("running", "finished", "failed", "killed")


@dataclass(frozen=True)
class JobStatus:
    state: str
    attempt: str
    """One id per execution of the job (a resumed job is a new attempt)."""
    started_ms: int
    resuming: bool
    """This execution continued from a checkpoint of an earlier one."""
    durable_epoch: int = 0
    """The last epoch whose history line and checkpoint are both written."""
    ended_ms: int | None = None
    reason: str | None = None
    tracking: str = "in-process"
    """Who writes the job's MLflow run: the job itself (in-process), a follower, or nobody (off)."""
    host: str = ""
    pid: int = 0

    @classmethod
    def begin(cls, resuming: bool, tracking: str = "in-process", started_ms: int | None = None) -> JobStatus:
        return cls(
            "running",
            uuid.uuid4().hex,
            started_ms if started_ms is not None else process_started_ms(),
            resuming,
            tracking=tracking,
            host=socket.gethostname(),
            pid=os.getpid(),
        )

    def at_epoch(self, epoch: int) -> JobStatus:
        return replace(self, durable_epoch=epoch)

    def ended(self, state: str, reason: str | None = None) -> JobStatus:
        if state not in STATES[1:]:
            raise ValueError(f"a job ends finished, failed or killed, not {state!r}")
        return replace(self, state=state, ended_ms=now_ms(), reason=reason)


def now_ms() -> int:
    return int(time.time() * 1000)


def process_started_ms() -> int:
    """When this process started (Linux: from /proc, so the imports before any job code count as part of
    the job); now where that cannot be read."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        return int((boot + ticks / os.sysconf("SC_CLK_TCK")) * 1000)
    except (OSError, ValueError, IndexError, StopIteration):
        return now_ms()


def write_status(run_dir: str | Path, status: JobStatus) -> None:
    text = json.dumps(asdict(status), indent=1) + "\n"
    atomic_write(RunFiles(run_dir).status, lambda handle: handle.write(text.encode()))


def read_status(run_dir: str | Path) -> JobStatus | None:
    """The job's status, or None when the directory has none (a job of an older version, or not started)
    or an unreadable one (it is rewritten whole by the next execution)."""
    try:
        data = json.loads(RunFiles(run_dir).status.read_text())
        status = JobStatus(**data)
    except (OSError, ValueError, TypeError):
        return None
    return status if status.state in STATES else None
