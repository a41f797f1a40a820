"""Where datasets live and how files get there: the data root, the missing/corrupt-dataset errors, atomic
writes (nothing half-written survives an interruption) and staged downloads (a failed download leaves
nothing behind)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..atomic import atomic_write

ENV_VAR = "MEBQAT_DATA"


class DatasetMissingError(ValueError):
    """A dataset is absent (or could not be downloaded). The message names the dataset, the path that was
    tried and how to obtain it."""

    def __init__(self, dataset: str, path: Path | str, how_to_obtain: str, reason: str | None = None):
        self.dataset, self.path, self.how_to_obtain = dataset, Path(path), how_to_obtain
        what = reason or "not found"
        super().__init__(f"dataset {dataset!r} {what}: tried {self.path}. How to obtain it: {how_to_obtain}")


class DatasetCorruptError(DatasetMissingError):
    """Files are present but fail verification (checksum, expected layout or size)."""

    def __init__(self, dataset: str, path: Path | str, how_to_obtain: str, problem: str):
        super().__init__(dataset, path, how_to_obtain, reason=f"is present but unusable ({problem})")


class SyntheticDataError(DatasetCorruptError):
    """The files are the synthetic rehearsal data of ``mebqat data synthesize`` (``mebqat.data.synthetic``),
    loaded with ``verify`` on: refused, so that no real experiment runs on them by mistake."""

    def __init__(self, dataset: str, path: Path | str, how_to_obtain: str):
        self.dataset, self.path, self.how_to_obtain = dataset, Path(path), how_to_obtain
        ValueError.__init__(
            self,
            f"{self.path} is the synthetic rehearsal data written by `mebqat data synthesize`, not the real "
            f"{dataset!r} dataset: point the data root (root=, --root, $MEBQAT_DATA, data_root) at the real "
            "dataset; rehearsal runs load this data with verify off (verify=False, --no-verify, data.verify: false)",
        )


def open_checked(
    dataset: str,
    path: Path,
    how_to_obtain: str,
    construct: Callable[[], Any],
    problem: str = "torchvision's MD5 check failed",
) -> Any:
    """``construct()`` a torchvision dataset; its integrity failure (a RuntimeError) becomes a
    :class:`DatasetCorruptError` that says how to load files one built oneself."""
    try:
        return construct()
    except RuntimeError as err:
        raise DatasetCorruptError(
            dataset, path, how_to_obtain, f"{problem}: {err}; files you built yourself load with verify=False"
        ) from None


def default_data_root() -> Path:
    """``$MEBQAT_DATA`` if set, else ``./data`` (absolute)."""
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser().resolve() if value else Path("data").resolve()


def resolve_root(root: str | os.PathLike | None) -> Path:
    return default_data_root() if root is None else Path(root).expanduser().resolve()


def save_arrays(path: Path, meta: dict[str, Any], **arrays: np.ndarray) -> None:
    """Write arrays plus a JSON ``meta`` record as one uncompressed ``.npz``, atomically."""

    def write(handle: BinaryIO) -> None:
        meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
        entries: dict[str, Any] = {"__meta__": meta_bytes, **arrays}  # Any: numpy's stub fears allow_pickle
        np.savez(handle, **entries)
        handle.flush()
        os.fsync(handle.fileno())

    atomic_write(path, write)


class CacheCorruptError(ValueError):
    """A cache file that cannot be read back (cut short, overwritten, foreign)."""


def load_arrays(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The arrays and meta record of a :func:`save_arrays` file; a damaged file is a :class:`CacheCorruptError`
    naming it (the zip's CRC checks catch overwritten bytes, its directory a cut)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise CacheCorruptError(
            f"{path} is damaged ({type(err).__name__}: {' '.join(str(err).split())[:120]})"
        ) from None
    if not isinstance(meta, dict):
        raise CacheCorruptError(f"{path} is damaged (its meta record is not a mapping)")
    return meta, arrays


def cached_arrays(
    path: Path,
    build: Callable[[], tuple[dict[str, Any], dict[str, np.ndarray]]],
    check: Callable[[dict[str, Any], dict[str, np.ndarray]], str | None] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray], float | None]:
    """(meta, arrays, build seconds or None) of a cache: built when absent; a damaged cache, or one whose
    ``check`` finds a problem, is rebuilt (it is derived data, deterministic from its recipe), with a warning."""
    if path.is_file():
        try:
            meta, arrays = load_arrays(path)
            problem = check(meta, arrays) if check else None
            if problem is None:
                return meta, arrays, None
            raise CacheCorruptError(f"{path} {problem}")
        except CacheCorruptError as err:
            print(f"mebqat: {err}; rebuilding it", file=sys.stderr)
            path.unlink(missing_ok=True)
    started = time.perf_counter()
    meta, arrays = build()
    save_arrays(path, meta, **arrays)
    meta, arrays = load_arrays(path)
    return meta, arrays, time.perf_counter() - started


def digest(*parts: Any) -> str:
    """SHA-256 over arrays (dtype, shape and bytes) and JSON-able values, in order."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype.str}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()


def _merge_move(src: Path, dst: Path) -> None:
    """Move the tree ``src`` onto ``dst``, merging directories that exist on both sides."""
    if dst.is_dir() and src.is_dir():
        for child in src.iterdir():
            _merge_move(child, dst / child.name)
        src.rmdir()
    else:
        os.replace(src, dst)


@contextlib.contextmanager
def staged_download(root: Path, dataset: str, how_to_obtain: str) -> Iterator[Path]:
    """Run a download into a fresh staging folder inside ``root``; on success its content is moved into
    ``root``, on failure the staging folder (and ``root`` itself, if this created it) is removed and the
    error becomes a :class:`DatasetMissingError`."""
    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".download-{dataset}-", dir=root))
    try:
        try:
            yield staging
        except DatasetMissingError:
            raise
        except Exception as err:  # network errors come in many types (URLError, RuntimeError, OSError...)
            raise DatasetMissingError(
                dataset, root, how_to_obtain, reason=f"could not be downloaded ({type(err).__name__}: {err})"
            ) from err
        for child in list(staging.iterdir()):
            _merge_move(child, root / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created_root and not any(root.iterdir()):
            root.rmdir()


def ensure_files(
    dataset: str, root: Path, paths: list[Path], how_to_obtain: str, fetch: Callable[[Path], None] | None
) -> None:
    """Raise :class:`DatasetMissingError` for the first of ``paths`` that is absent, after trying
    ``fetch(staging_folder)`` (a standard loader's download into a stand-in root) when given."""
    missing = [p for p in paths if not p.is_file()]
    if missing and fetch is not None:
        with staged_download(root, dataset, how_to_obtain) as staging:
            fetch(staging)
        missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetMissingError(dataset, missing[0], how_to_obtain)


def quiet_stdout() -> contextlib.AbstractContextManager:
    """Third-party loaders print chatter ("Files already downloaded"); keep it out of our output."""
    return contextlib.redirect_stdout(io.StringIO())
