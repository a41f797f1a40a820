"""One job at a time in a run directory: every command that writes one (``mebqat run``, ``train``,
``evaluate``) holds its lock, the file ``.job.lock`` inside it, for its whole life.

The lock is an exclusive ``flock`` on that file, taken without waiting: a second job is refused at once,
before any compute, with one line naming the holder (PID, host, command, start time, all recorded in the
file). The kernel drops a ``flock`` when the holder's last descriptor closes, so a job that dies in any way,
``kill -9`` included, leaves no live lock: the next job takes it over and says whose it was. A job that ends
(even by an error or a signal) deletes the file while it still holds the lock; a contender that opened the
file just before checks, once its ``flock`` succeeds, that the file it locked is still the one at the path,
and tries again otherwise, so deleting the file never lets two jobs in.

Nested holds in one process (``mebqat run`` trains, then evaluates) count up and down. A process forked
from a holder (a data-loader worker) closes its copy of the descriptor, so it never keeps a dead job's lock
alive. On NFS, Linux emulates ``flock`` with NFS byte-range locks: they work across hosts where the server
supports locking (NFSv4, or NFSv3 with lockd), and a crashed host's lock goes when its lease expires
(NFSv4: about 90 s); a mount with ``nolock`` or ``local_lock=flock`` makes the lock local to each host
(docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shlex
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import ConfigError
from ..core.rundir_layout import LOCK

try:
    import fcntl

    HAS_FLOCK = True
except ImportError:  # pragma: no cover - no flock (Windows): run directories are not locked
    HAS_FLOCK = False

RETRIES = 50
"""Tries when the lock file is replaced between opening and locking it (a holder ending at that moment)."""


class RunDirBusy(ConfigError):
    """Another live process holds the run directory's lock."""


@dataclass
class _Held:
    fd: int
    path: Path
    created: list[Path]
    depth: int = 1
    previous: dict[str, Any] = field(default_factory=dict)


_HELD: dict[Path, _Held] = {}


def _forget_in_child() -> None:
    """In a forked child: close the copies of held lock descriptors (the parent keeps its lock)."""
    for held in _HELD.values():
        with contextlib.suppress(OSError):
            os.close(held.fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def holder_text(info: dict[str, Any]) -> str:
    """``PID 123 on host h (`mebqat run`, since 2026-…)`` from a lock file's record."""
    pid, host = info.get("pid", "?"), info.get("host", "?")
    command = info.get("command")
    details = [f"`mebqat {command}`" if command else None, f"since {info['started']}" if info.get("started") else None]
    shown = ", ".join(d for d in details if d)
    return f"PID {pid} on {host}" + (f" ({shown})" if shown else "")


def _read(fd: int) -> dict[str, Any]:
    try:
        text = os.pread(fd, 65536, 0).decode("utf-8", "replace")
        info = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid < 1:
        return True  # unknown: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, not ours to signal
        return True
    return True


def _busy(root: Path, path: Path, fd: int) -> RunDirBusy:
    info = _read(fd)
    if not info:
        return RunDirBusy(
            f"{root} is in use by another job that is just starting (lock {path}): wait for it to end, or give "
            f"this job its own --out"
        )
    pid, host = info.get("pid"), info.get("host")
    if host == socket.gethostname() and not _alive(pid):
        return RunDirBusy(
            f"{root} is locked by a process started by {holder_text(info)}, which is no longer running: a "
            f"process it started still holds {path}; stop that process (e.g. `fuser -k {path}`) and run again"
        )
    return RunDirBusy(
        f"{root} is in use by another job: {holder_text(info)} holds its lock {path}; wait for it to end, "
        f"or stop it (`kill {pid}` on {host}) and run again; a different job needs its own --out"
    )


def _record(command: str) -> bytes:
    argv = shlex.join(sys.argv[1:]) if sys.argv else ""
    return (
        json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "command": command,
                "argv": argv[:2000],
            }
        )
        + "\n"
    ).encode()


def _missing_dirs(root: Path) -> list[Path]:
    """The directories (root first, then its parents) that creating ``root`` would make."""
    return [p for p in (root, *root.parents) if not p.exists()]


def _remove_empty(folders: list[Path]) -> None:
    """Remove the directories a job made (deepest first) as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def _acquire(root: Path, command: str, create: bool) -> _Held:
    created = _missing_dirs(root) if create else []
    try:
        return _try_acquire(root, command, create, created)
    except BaseException:
        _remove_empty(created)
        raise


def _try_acquire(root: Path, command: str, create: bool, created: list[Path]) -> _Held:
    path = root / LOCK
    for _ in range(RETRIES):
        if create:
            root.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # the directory went (a holder removed it as it ended): again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            busy = _busy(root, path, fd)
            os.close(fd)
            raise busy from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:  # locked a file its holder deleted as it ended: lock the current one
            os.close(fd)
            continue
        previous = _read(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _record(command), 0)
        return _Held(fd, path, created, previous=previous)
    raise RunDirBusy(f"{root}: could not take its lock {path} (it kept being replaced): run again")


def _release(held: _Held) -> None:
    try:
        with contextlib.suppress(OSError):
            held.path.unlink()  # while still locked: a contender that opened it sees it is gone
        _remove_empty(held.created)  # the directories this job made, if it wrote nothing in them
    finally:
        os.close(held.fd)


@contextlib.contextmanager
def run_lock(root: str | Path, command: str, *, create: bool = True) -> Iterator[None]:
    """Hold the lock of the run directory ``root`` (made, with its parents, when ``create``; directories
    made here are removed again at the end if they stay empty; without ``create``, only an existing
    directory is locked). Raises :class:`RunDirBusy` when another live process holds it. The commands take
    it as soon as they know the job (before importing torch) where the directory exists, and the engine
    again (nested) for the whole job."""
    root = Path(root)
    key = root.resolve()
    held = _HELD.get(key)
    if held is not None:  # nested in this process: the outer hold covers it
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
        return
    if not HAS_FLOCK or (not create and not root.is_dir()):
        yield  # nothing to lock: the command itself refuses a missing directory
        return
    held = _acquire(root, command, create)
    _HELD[key] = held
    try:
        yield
    finally:
        del _HELD[key]
        _release(held)


def taken_over(root: str | Path) -> dict[str, Any] | None:
    """Once: the record of the stale lock this process's hold of ``root`` took over (a job that died
    holding it), or None."""
    held = _HELD.get(Path(root).resolve())
    if held is None or not held.previous:
        return None
    previous, held.previous = held.previous, {}
    return previous


def stale_text(previous: dict[str, Any]) -> str:
    """The log line of a stale lock taken over (its holder died, e.g. by ``kill -9``)."""
    text = f"took over the lock of a job that ended without releasing it: {holder_text(previous)}"
    if previous.get("host") not in (None, socket.gethostname()):
        text += " (on another host: if that job still runs, this file system does not share locks between hosts)"
    return text
