"""The content fingerprint of the data a job reads (docs/data.md, "The data a job read"): a SHA-256 per
dataset file, stand-in cache and fixed task file (a folder of files, Omniglot's, counts as one entry whose
hash covers every file in it), named relative to the data root, and one combined digest.

A job records it in its run directory (``data_fingerprint.json``) when training starts and in
``metrics.json``'s provenance; a resumed job, an evaluation and the workflow compare the data on disk with
it, so that data changed under an unchanged configuration is detected and named instead of used silently.

Hashing a paper-scale file takes seconds (SVHN's ``extra_32x32.mat`` is 1.6 GB), so every hash is cached
by (absolute path, size, mtime_ns, inode) in a JSON file of the user's cache folder: an ordinary write
changes the size or the modification time, so the cache never hides a change, and a job start only
``stat``s the files it read before.

Torch-free: the engine records and checks, the workflow reads the record to decide reruns.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from .files import InputError

FORMAT = 1
CACHE_ENV = "MEBQAT_HASH_CACHE"
"""The hash cache's file; default ``$XDG_CACHE_HOME/mebqat/file-hashes.json`` (``~/.cache/...``)."""
CACHE_FORMAT = 1
PREFIX = 12
"""Hex digits of a SHA-256 shown in messages."""


def hash_cache_path() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mebqat" / "file-hashes.json"


def _listing(folder: Path) -> list[tuple[Path, os.stat_result]]:
    """Every file below ``folder``, sorted, with its ``stat``: one walk serves a folder's token, size and hash."""
    return [(p, p.stat()) for p in sorted(folder.rglob("*")) if p.is_file()]


def _folder_token(folder: Path, listing: list[tuple[Path, os.stat_result]]) -> str:
    h = hashlib.sha256()
    for file, st in listing:
        h.update(f"{file.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def stat_token(path: Path) -> str | None:
    """What an ordinary write to ``path`` changes, without reading it: ``size:mtime_ns`` of a file; of a folder,
    a digest of every file's relative path, size and mtime_ns; None when absent."""
    if path.is_file():
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    if path.is_dir():
        return _folder_token(path, _listing(path))
    return None


class FileHashCache:
    """SHA-256 of files, remembered by (absolute path, size, mtime_ns, inode) in one JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else hash_cache_path()
        self.entries = self._read()
        self.added: dict[str, dict[str, Any]] = {}
        self.hashed: list[Path] = []
        """Files this cache hashed (a miss), in order: what a job start read in full."""

    def _read(self, warn: bool = True) -> dict[str, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") != CACHE_FORMAT or not isinstance(data.get("entries"), dict):
                raise ValueError("not a hash cache of this version")
            return data["entries"]
        except (OSError, ValueError, AttributeError) as err:
            if warn:
                print(f"mebqat: the hash cache {self.path} is unusable ({err}); it is rebuilt", file=sys.stderr)
            return {}

    @staticmethod
    def _key(st: os.stat_result) -> dict[str, int]:
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}

    def sha256(self, file: Path) -> str:
        name = str(file.absolute())
        key = self._key(file.stat())
        known = self.added.get(name) or self.entries.get(name)
        if known is not None and all(known.get(k) == v for k, v in key.items()):
            return str(known["sha256"])
        with open(file, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if self._key(file.stat()) == key:  # not written while it was read: worth remembering
            self.added[name] = {**key, "sha256": digest}
        self.hashed.append(file)
        return digest

    def save(self) -> None:
        """Add this cache's new hashes to the file (merged with what other jobs wrote meanwhile; entries of
        files that no longer exist are dropped), atomically. A cache that cannot be written costs time only."""
        if not self.added:
            return
        entries = {**self._read(warn=False), **self.added}
        entries = {name: entry for name, entry in entries.items() if os.path.isfile(name)}
        text = json.dumps({"format": CACHE_FORMAT, "entries": entries}, sort_keys=True)
        try:
            atomic_write(self.path, lambda f: f.write(text.encode()))
        except OSError as err:
            print(
                f"mebqat: cannot write the hash cache {self.path} ({err}); data files are hashed again next time",
                file=sys.stderr,
            )
        self.entries, self.added = entries, {}


@dataclass(frozen=True)
class FileEntry:
    """One file (or folder) a job read: ``path`` relative to the data root (absolute when outside it)."""

    path: str
    bytes: int
    sha256: str
    stat: str
    files: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256, "stat": self.stat, "files": self.files}


@dataclass(frozen=True)
class DataChange:
    """A recorded file whose content differs now."""

    path: str
    recorded: str
    now: str

    def describe(self) -> str:
        return f"{self.path} (sha256 {self.recorded[:PREFIX]}… recorded, {self.now[:PREFIX]}… now)"


@dataclass(frozen=True)
class DataFingerprint:
    """The files a job read, and ``note``: the data change that made the workflow rerun the job (empty when
    none did; see :func:`rerun_note`)."""

    files: tuple[FileEntry, ...]
    note: str = ""
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        pairs = sorted((entry.path, entry.sha256) for entry in self.files)
        object.__setattr__(self, "digest", hashlib.sha256(json.dumps(pairs).encode()).hexdigest())

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "digest": self.digest,
            "files": [entry.as_dict() for entry in sorted(self.files, key=_path)],
            "note": self.note,
        }

    def provenance(self) -> dict[str, Any]:
        """What ``metrics.json``'s provenance holds: the combined digest and each file's path, size and hash."""
        return {
            "digest": self.digest,
            "files": [{"path": e.path, "bytes": e.bytes, "sha256": e.sha256} for e in sorted(self.files, key=_path)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataFingerprint:
        if data.get("format") != FORMAT or not isinstance(data.get("files"), list):
            raise ValueError(f"not a data fingerprint of format {FORMAT}")
        files = tuple(
            FileEntry(str(e["path"]), int(e["bytes"]), str(e["sha256"]), str(e["stat"]), int(e.get("files", 1)))
            for e in data["files"]
        )
        fingerprint = cls(files, str(data.get("note", "")))
        if data.get("digest") != fingerprint.digest:
            raise ValueError("its digest does not match its files")
        return fingerprint


def _path(entry: FileEntry) -> str:
    return entry.path


def read_fingerprint(path: Path) -> DataFingerprint | None:
    """The recorded fingerprint, None when there is none; a damaged record is an :class:`InputError` naming it."""
    if not path.is_file():
        return None
    try:
        return DataFingerprint.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(
            f"{path} cannot be read ({' '.join(str(err).split())[:120]}): the data the run read are unknown"
        ) from None


def write_fingerprint(path: Path, fingerprint: DataFingerprint) -> None:
    text = json.dumps(fingerprint.as_dict(), indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def rerun_note(recorded: DataFingerprint | None, root: Path, token: Callable[[Path], str | None] = stat_token) -> str:
    """The workflow's rerun trigger for data (part of the job's rerun key): the recorded files whose size or
    mtime changed, with their size and mtime now, else the recorded note. Absent files are not a change (moved
    data, a stand-in to be rebuilt identically): the job's loader deals with them.

    A job rerun for a data change records this note, computed before it writes anything, so that the next
    workflow run finds the same value it saw and does not rerun the job again."""
    if recorded is None:
        return ""
    drifted = [
        f"{entry.path} ({now})"
        for entry in recorded.files
        if (now := token(root / entry.path)) is not None and now != entry.stat
    ]
    return "data changed: " + ", ".join(drifted) if drifted else recorded.note


def relative_name(path: Path, root: Path) -> str:
    try:
        return path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        return str(path.absolute())


class DataFiles:
    """The data files a job read (``sources``: files or folders under the data root ``root``), hashed now."""

    def __init__(self, root: Path, sources: Iterable[Path], cache: FileHashCache | None = None) -> None:
        self.root = Path(root)
        self.cache = cache if cache is not None else FileHashCache()
        self.now: dict[str, FileEntry] = {}
        for source in sources:
            name = relative_name(Path(source), self.root)
            if name not in self.now:
                self.now[name] = self._entry(name)
        self.cache.save()

    def _entry(self, name: str) -> FileEntry:
        path = self.root / name
        if path.is_dir():
            listing = _listing(path)
            h = hashlib.sha256()
            for file, _ in listing:
                h.update(f"{file.relative_to(path).as_posix()}\0{self.cache.sha256(file)}\n".encode())
            size = sum(st.st_size for _, st in listing)
            return FileEntry(name, size, h.hexdigest(), _folder_token(path, listing), len(listing))
        token = stat_token(path)
        if token is None:
            raise InputError(f"data file {path} vanished while the job was reading it: run the job again")
        return FileEntry(name, path.stat().st_size, self.cache.sha256(path), token)

    def _current(self, name: str) -> FileEntry | None:
        """The entry of ``name`` as it is on disk now (hashed if this job did not read it), None when absent."""
        if name not in self.now and (self.root / name).exists():
            self.now[name] = self._entry(name)
            self.cache.save()
        return self.now.get(name)

    def changes_since(self, recorded: DataFingerprint | None) -> list[DataChange]:
        """The recorded files whose content differs now (absent ones are not compared)."""
        changes = []
        for entry in recorded.files if recorded is not None else ():
            current = self._current(entry.path)
            if current is not None and current.sha256 != entry.sha256:
                changes.append(DataChange(entry.path, entry.sha256, current.sha256))
        return changes

    def record(self, previous: DataFingerprint | None, note: str) -> DataFingerprint:
        """What the run read so far: the previous record's files (as they are now where present) and this job's."""
        kept = {e.path: self.now.get(e.path, e) for e in (previous.files if previous is not None else ())}
        return DataFingerprint(tuple({**kept, **self.now}.values()), note)


def describe_changes(where: Path, changes: list[DataChange]) -> str:
    """Which data files of the run in ``where`` changed, and how (the first three)."""
    shown = "; ".join(change.describe() for change in changes[:3])
    more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
    return f"{where}: the data changed since this run read them: {shown}{more}"
