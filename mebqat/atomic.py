"""Atomic file writing for everything the project produces (run files, checkpoints, tables, figures,
dataset caches): write to a temporary file beside the target, then rename it into place in one step, so
an interruption never leaves a half-written file. The result gets the ordinary permissions of a new file
(``mkstemp`` creates it private)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_UMASK = os.umask(0)  # the umask can only be read by setting it: read once, restore at once
os.umask(_UMASK)


TEMP_SUFFIX = ".tmp"


def is_temporary(path: Path) -> bool:
    """A temporary file of an :func:`atomic_path` write (``.<name>.<random>.tmp``), left by an interruption."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX) and path.name.count(".") >= 3


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path`` in one step, on any
    failure (interrupts included) it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


class _RememberingWriter:
    """A file object that keeps the OS error of a write that failed: torch's checkpoint writer reports a failed
    write as an opaque ``unexpected pos`` error, which hides that the disk was full."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = err
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def atomic_write(path: Path, write: Any) -> None:
    """``write(binary_file_object)`` into a temp file beside ``path``, then rename it over ``path``. A write the
    disk refused (full, over quota, over ``ulimit -f``) raises that ``OSError``, naming ``path``."""
    with atomic_path(path) as tmp:
        handle = _RememberingWriter(open(tmp, "wb"))
        try:
            with handle.handle:
                write(handle)
        except OSError as err:
            raise _naming(err, path) from None
        except Exception:
            if handle.error is not None:
                raise _naming(handle.error, path) from None
            raise


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` about ``path`` (not the temporary file that was being written)."""
    if err.errno is None:
        return err
    return type(err)(err.errno, err.strerror, str(path))
