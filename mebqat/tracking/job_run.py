"""The MLflow run of a job that logs itself (``mebqat run --tracking in-process``), kept so that the store
never stops the training: when the store goes away (a server that stops answering, a SQLite file whose disk
fills up), the job says so in one line and trains on, its run directory keeping every epoch as always; at
each later epoch it asks again, and once the store answers the run catches up with every durable epoch. If
the store is still away when the job ends, the job ends as it would (its results are all in the run
directory) and says how to log them later. A wrong call (a bug) is not a store problem and still stops the
job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.rundir_layout import RunFiles
from .live import LiveRun
from .publish import LogResult
from .store import health_status
from .store_problems import StoreProblem, store_name, store_problem
from .uri import resolve_uri

HEALTH_TIMEOUT_S = 5.0
"""How long an epoch waits to learn whether a server that went away is back."""


class JobRun:
    def __init__(self, config: Mapping[str, Any], run_dir: str | Path, uri: str | None, say: Callable[[str], None]):
        self.config, self.files, self.uri, self.say = config, RunFiles(run_dir), resolve_uri(uri), say
        self.live: LiveRun | None = None
        self.down: StoreProblem | None = None
        """The problem the store has, while it has one."""
        self._opening: dict[str, Any] = {}

    @property
    def store(self) -> str:
        return store_name(self.uri)

    def open(self, resuming: bool, started_ms: int, attempt: str, durable_epoch: int) -> None:
        """Open (or continue) the job's run and log the durable epochs it lacks."""
        self._opening = {"resuming": resuming, "started_ms": started_ms, "attempt": attempt}
        self._guard(lambda: self._connect(durable_epoch), "as the job started")

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        """A durable epoch; while the store is away, first ask whether it is back."""
        epoch = record["epoch"]
        if self.down is None and self.live is not None:
            self._guard(lambda: self.live.log_epoch(record) if self.live else None, f"at epoch {epoch}")
        elif self._answers() and self._guard(lambda: self._connect(epoch), f"at epoch {epoch}", quiet=True):
            self.say(f"MLflow store {self.store} answers again: the job's run caught up to epoch {epoch}")
            self.down = None

    def finish(self, ended_ms: int | None) -> LogResult | None:
        """Complete the run from the finished directory; None when the store is still away (said in a line)."""
        if self.down is not None:
            if not (self._answers() and self._guard(lambda: self._connect(None), "", quiet=True)):
                self._say_later("still " + self.down.cause)
                return None
            self.down = None
        assert self.live is not None
        try:
            return self.live.finish(self.files.root, ended_ms=ended_ms)
        except Exception as err:
            problem = store_problem(err)
            if problem is None:
                raise
            self._say_later(problem.cause)
            return None

    def end(self, status: str, reason: str, ended_ms: int | None) -> None:
        """FAILED or KILLED with the reason, when the store answers (the job's own error matters more)."""
        if self.live is not None and self.down is None:
            self.live.end(status, reason, ended_ms=ended_ms)

    def _connect(self, up_to_epoch: int | None) -> None:
        if self.live is None:
            self.live = LiveRun.open(self.config, uri=self.uri, **self._opening)
        history = self.files.history_so_far()
        self.live.catch_up([r for r in history if up_to_epoch is None or r["epoch"] <= up_to_epoch])

    def _guard(self, call: Callable[[], object], when: str, quiet: bool = False) -> bool:
        """``call()``; False when the store failed it (said once, as the outage begins)."""
        try:
            call()
            return True
        except Exception as err:
            problem = store_problem(err)
            if problem is None:
                raise
            if self.down is None and not quiet:
                self.say(
                    f"MLflow store {self.store} {problem.cause} {when}: training goes on, {self.files.root} keeps "
                    f"every epoch, and the job's run catches up when the store is back ({problem.fix})"
                )
            self.down = problem
            return False

    def _answers(self) -> bool:
        """A server answers /health (at once, not after MLflow's retries); any other store may be tried."""
        return not self.uri.startswith(("http://", "https://")) or health_status(self.uri, HEALTH_TIMEOUT_S) == 200

    def _say_later(self, cause: str) -> None:
        self.say(
            f"MLflow store {self.store} {cause}: the job's results are complete in {self.files.root}, but its "
            f"MLflow run is not; once the store is back, log it with: mebqat track log {self.files.root} "
            f"--uri {self.uri}"
        )
