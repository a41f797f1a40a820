"""Full-size synthetic CIFAR-10, SVHN, Omniglot and MiniImageNet in their official on-disk formats, for the
paper-scale rehearsal: the real loaders read them from where they look for the real files, at the real sizes.

``mebqat data synthesize --root DIR`` (:func:`synthesize`) writes each dataset into a hidden staging folder
and renames it into place at the end, beside ``SYNTHETIC-REHEARSAL-DATA.txt`` (what it is) and
``SYNTHETIC-REHEARSAL-MANIFEST.json`` (sizes and file listing: a rerun on a complete, current set does
nothing and reads no pixels). A dataset folder without the marker is never overwritten.

Every pickle and ``.mat`` also carries the key :data:`MARKER_KEY` and every zip the marker file, so the
loaders' :func:`refuse_synthetic` (``verify=True``) recognises the data even when a file was copied out
alone. The content is a class-dependent pattern plus noise: cheap to make, learnable in principle.

Torch-free: numpy, Pillow and the standard library (scipy only to look for a ``.mat``'s marker).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageDraw

from .storage import SyntheticDataError

MARKER_NAME = "SYNTHETIC-REHEARSAL-DATA.txt"
MANIFEST_NAME = "SYNTHETIC-REHEARSAL-MANIFEST.json"
MARKER_KEY = "mebqat_synthetic_rehearsal"  # a valid MATLAB variable name, so the .mat files can carry it too
FORMAT = 1  # raise when the writers change what they write: sets of an older format are rewritten
SEED = 0
STAGING_PREFIX = ".synthesize-"

DATASETS = ("cifar10", "svhn", "omniglot", "miniimagenet")
FOLDERS = {"cifar10": "cifar-10-batches-py", "svhn": "svhn", "omniglot": "omniglot-py", "miniimagenet": "mini-imagenet"}
TITLES = {"cifar10": "CIFAR-10", "svhn": "SVHN", "omniglot": "Omniglot", "miniimagenet": "MiniImageNet"}
REAL_SIZES: dict[str, dict[str, int]] = {
    "cifar10": {"per_batch": 10_000, "test": 10_000},
    "svhn": {"train": 73_257, "test": 26_032, "extra": 531_131},
    "omniglot": {"drawers": 20},
    "miniimagenet": {"train": 64, "validation": 16, "test": 20, "per_class": 600},
}
"""The official counts: CIFAR-10 images per training batch (5 batches) and in the test batch; SVHN images
per file; Omniglot drawings per character (every character of both official sets is written); MiniImageNet
classes per cache file and images per class. The command writes these; tests pass smaller ones."""

CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}
OMNIGLOT_SETS = {"background": "images_background", "evaluation": "images_evaluation"}
OMNIGLOT_SIDE = 105
MINIIMAGENET_MODES = ("train", "validation", "test")

CHUNK = 8192  # images generated at a time: bounds the memory of the large files
NOISE_BANK = 1 << 20  # noise is read from windows of one random bank: a copy per image, not a draw per pixel


def in_file_marker(dataset: str) -> str:
    return f"synthetic rehearsal data written by `mebqat data synthesize`, not the real {TITLES[dataset]}"


# ---------------------------------------------------------------- content


def _seed_of(*parts: int | str) -> list[int]:
    return [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in parts]


@cache
def _noise_bank(seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(_seed_of(seed, "noise")).integers(0, 64, NOISE_BANK + size, dtype=np.uint8)


@cache
def _template(seed: int, label: int, shape: tuple[int, int, int]) -> np.ndarray:
    channels, height, width = shape
    grid = np.random.default_rng(_seed_of(seed, "class", label)).integers(0, 192, (channels, 4, 4), dtype=np.uint8)
    rows, cols = np.arange(height) * 4 // height, np.arange(width) * 4 // width
    return grid[:, rows][:, :, cols]


def synthetic_images(labels: np.ndarray, shape: tuple[int, int, int], seed: int, first: int = 0) -> np.ndarray:
    """uint8 ``[N, C, H, W]``: image ``first + i`` of a file shows class ``labels[i]``'s pattern (a coarse
    4×4 grid of random values in 0..191, the same in every split) plus noise in 0..63 (a window into a
    seeded bank that moves with the image number)."""
    size = int(np.prod(shape))
    bank = np.lib.stride_tricks.sliding_window_view(_noise_bank(seed, size), size)
    offsets = (np.arange(first, first + len(labels), dtype=np.int64) * 7919 + seed) % NOISE_BANK
    images = bank[offsets].reshape(len(labels), *shape)
    for label in np.unique(labels):
        images[labels == label] += _template(seed, int(label), shape)
    return images


def synthetic_labels(n: int, classes: int, seed: int, part: str) -> np.ndarray:
    """``n`` labels, balanced over ``classes`` and shuffled by ``seed`` and the file's ``part``."""
    return np.random.default_rng(_seed_of(seed, part)).permutation(np.arange(n, dtype=np.int64) % classes)


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, CHUNK):
        yield start, min(n, start + CHUNK)


# ---------------------------------------------------------------- CIFAR-10: python pickles


def write_cifar10(folder: Path, *, per_batch: int, test: int, seed: int = SEED) -> int:
    """``data_batch_1`` … ``data_batch_5``, ``test_batch`` and ``batches.meta``: the official tarball's
    pickled dicts; returns the number of images. Protocol 4, not the tarball's Python 2 protocol 2: Python 3
    pickles bytes in protocol 2 as latin-1 text, 1.5 times their size."""
    marker = in_file_marker("cifar10")
    for part, n, batches in (("train", per_batch, 5), ("test", test, 1)):
        labels = synthetic_labels(n * batches, len(CIFAR10_LABELS), seed, f"cifar10/{part}")
        for b in range(batches):
            own = labels[b * n : (b + 1) * n]
            entry = {
                "batch_label": f"{'training' if part == 'train' else 'testing'} batch {b + 1} of {batches}",
                "labels": own.tolist(),
                "data": synthetic_images(own, (3, 32, 32), seed, first=b * n).reshape(n, 3072),
                "filenames": [f"synthetic_{CIFAR10_LABELS[y]}_{b * n + i:06d}.png" for i, y in enumerate(own)],
                MARKER_KEY: marker,
            }
            name = f"data_batch_{b + 1}" if part == "train" else "test_batch"
            _write_file(folder / name, partial(_pickle, entry, protocol=4))
    meta = {"num_cases_per_batch": per_batch, "label_names": list(CIFAR10_LABELS), "num_vis": 3072, MARKER_KEY: marker}
    _write_file(folder / "batches.meta", lambda f: pickle.dump(meta, f, protocol=4))
    return 5 * per_batch + test


# ---------------------------------------------------------------- SVHN: MATLAB v5 files, written in a stream

# MAT-file level 5 element types and array classes (MathWorks, "MAT-File Format", R2024a, pp. 1-7 and 1-16)
MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_UTF8 = 1, 2, 5, 6, 14, 16
MX_CHAR, MX_UINT8 = 4, 9


def _mat_element(kind: int, payload: bytes) -> bytes:
    return struct.pack("<II", kind, len(payload)) + payload + bytes(-len(payload) % 8)


def _mat_array_head(name: str, mx_class: int, dims: tuple[int, ...], kind: int, nbytes: int) -> bytes:
    """Everything of a miMATRIX element before its ``nbytes`` of column-major data (which the caller writes,
    then ``-nbytes % 8`` bytes of padding)."""
    head = (
        _mat_element(MI_UINT32, struct.pack("<II", mx_class, 0))
        + _mat_element(MI_INT32, struct.pack(f"<{len(dims)}i", *dims))
        + _mat_element(MI_INT8, name.encode("ascii"))
        + struct.pack("<II", kind, nbytes)
    )
    return struct.pack("<II", MI_MATRIX, len(head) + nbytes + (-nbytes % 8)) + head


def _write_svhn_file(f: BinaryIO, labels: np.ndarray, seed: int, part: str) -> None:
    text = f"MATLAB 5.0 MAT-file, written by mebqat data synthesize: {in_file_marker('svhn')}".encode("ascii")
    f.write(text[:116].ljust(116) + bytes(8) + struct.pack("<H", 0x0100) + b"IM")
    note = in_file_marker("svhn").encode("ascii")
    f.write(_mat_array_head(MARKER_KEY, MX_CHAR, (1, len(note)), MI_UTF8, len(note)) + note + bytes(-len(note) % 8))
    n = len(labels)
    f.write(_mat_array_head("X", MX_UINT8, (32, 32, 3, n), MI_UINT8, 3072 * n))
    for start, stop in _chunks(n):
        chw = synthetic_images(labels[start:stop], (3, 32, 32), seed, first=start)
        # X[row, col, channel, image] in column-major order: per image, per channel, column by column
        f.write(np.ascontiguousarray(chw.transpose(0, 1, 3, 2)).tobytes())
    f.write(bytes(-3072 * n % 8))
    y = np.where(labels == 0, 10, labels).astype(np.uint8)  # SVHN's files store digit 0 as 10
    f.write(_mat_array_head("y", MX_UINT8, (n, 1), MI_UINT8, n) + y.tobytes() + bytes(-n % 8))


def write_svhn(folder: Path, *, train: int, test: int, extra: int, seed: int = SEED) -> int:
    """``train_32x32.mat``, ``test_32x32.mat`` and ``extra_32x32.mat``: ``X`` uint8 [32, 32, 3, N] and ``y``
    uint8 [N, 1] (1..10, 10 for the digit 0), uncompressed MAT v5 as ``scipy.io.loadmat`` reads them."""
    counts = {"train": train, "test": test, "extra": extra}
    for part, n in counts.items():
        labels = synthetic_labels(n, 10, seed, f"svhn/{part}")
        _write_file(folder / SVHN_FILES[part], partial(_write_svhn_file, labels=labels, seed=seed, part=part))
    return sum(counts.values())


# ---------------------------------------------------------------- Omniglot: PNGs in folders and zips


def omniglot_characters() -> list[tuple[str, str, str]]:
    """Every ``(set, alphabet, character)`` of the Vinyals split shipped with mebqat, which covers both
    official sets (964 background + 659 evaluation characters), sorted."""
    folder = resources.files("mebqat") / "resources" / "omniglot_vinyals_split"
    return sorted(
        (s, alphabet, character)
        for split in ("train", "val", "test")
        for s, alphabets in json.loads((folder / f"{split}.json").read_text()).items()
        for alphabet, characters in alphabets.items()
        for character in characters
    )


def omniglot_drawing(number: int, drawer: int, seed: int = SEED) -> Image.Image:
    """Character ``number``'s drawing by ``drawer``: 2-4 strokes fixed by the character, shifted and jittered
    by the drawer; black on white, one bit, 105×105 like the official PNGs."""
    shape_rng = np.random.default_rng(_seed_of(seed, "omniglot", number))
    hand_rng = np.random.default_rng(_seed_of(seed, "omniglot", number, drawer))
    shift = hand_rng.integers(-5, 6, 2)
    image = Image.new("1", (OMNIGLOT_SIDE, OMNIGLOT_SIDE), 1)
    draw = ImageDraw.Draw(image)
    for _ in range(int(shape_rng.integers(2, 5))):
        points = shape_rng.integers(18, 88, (int(shape_rng.integers(2, 5)), 2))
        points = points + shift + hand_rng.integers(-2, 3, points.shape)
        draw.line([tuple(int(v) for v in p) for p in points], fill=0, width=3)
    return image


def write_omniglot(folder: Path, *, drawers: int, seed: int = SEED) -> int:
    """``images_background/`` and ``images_evaluation/`` (``<Alphabet>/<characterNN>/<id>_<drawer>.png``)
    with the zips of the same name beside them, as torchvision's download leaves them."""
    characters = omniglot_characters()
    marker = _marker_text("omniglot").encode()
    archives = {s: zipfile.ZipFile(folder / f"{top}.zip", "w", zipfile.ZIP_STORED) for s, top in OMNIGLOT_SETS.items()}
    try:
        for s, top in OMNIGLOT_SETS.items():
            (folder / top).mkdir()
            (folder / top / MARKER_NAME).write_bytes(marker)
            archives[s].writestr(f"{top}/{MARKER_NAME}", marker)
        for number, (s, alphabet, character) in enumerate(characters, start=1):
            relative = f"{OMNIGLOT_SETS[s]}/{alphabet}/{character}"
            (folder / relative).mkdir(parents=True)
            for drawer in range(1, drawers + 1):
                buffer = io.BytesIO()
                omniglot_drawing(number, drawer, seed).save(buffer, format="PNG")
                name = f"{relative}/{number:04d}_{drawer:02d}.png"
                (folder / name).write_bytes(buffer.getvalue())
                archives[s].writestr(name, buffer.getvalue())
    finally:
        for archive in archives.values():
            archive.close()
    return len(characters) * drawers


# ---------------------------------------------------------------- MiniImageNet: learn2learn's pickle caches


def write_miniimagenet(
    folder: Path, *, train: int, validation: int, test: int, per_class: int, seed: int = SEED
) -> int:
    """``mini-imagenet-cache-{train,validation,test}.pkl``: dicts with ``image_data`` (uint8 [N, 84, 84, 3],
    each class a block of ``per_class`` images) and ``class_dict`` (class name -> its image indices)."""
    classes = {"train": train, "validation": validation, "test": test}
    offset = 0  # classes are numbered across the files: each has its own pattern
    for mode in MINIIMAGENET_MODES:
        labels = np.repeat(np.arange(offset, offset + classes[mode]), per_class)
        images = np.empty((len(labels), 84, 84, 3), dtype=np.uint8)
        for start, stop in _chunks(len(labels)):
            images[start:stop] = synthetic_images(labels[start:stop], (3, 84, 84), seed, first=start).transpose(
                0, 2, 3, 1
            )
        class_dict = {
            f"synthetic{label:03d}": list(range(k * per_class, (k + 1) * per_class))
            for k, label in enumerate(range(offset, offset + classes[mode]))
        }
        cache_file = {"image_data": images, "class_dict": class_dict, MARKER_KEY: in_file_marker("miniimagenet")}
        # protocol 5 pickles the array's buffer as it is (lower protocols copy it first: +800 MB for train)
        _write_file(folder / f"mini-imagenet-cache-{mode}.pkl", partial(_pickle, cache_file, protocol=5))
        offset += classes[mode]
        del images, cache_file
    return sum(classes.values()) * per_class


WRITERS: dict[str, Callable[..., int]] = {
    "cifar10": write_cifar10,
    "svhn": write_svhn,
    "omniglot": write_omniglot,
    "miniimagenet": write_miniimagenet,
}


def _pickle(value: Any, f: BinaryIO, protocol: int) -> None:
    pickle.dump(value, f, protocol=protocol)


def _write_file(path: Path, write: Callable[[BinaryIO], None]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- recognising synthetic data (the loaders)


def _carries_marker(path: Path) -> bool:
    if path.is_dir():
        return (path / MARKER_NAME).is_file()
    if not path.is_file():
        return False
    if path.name == MARKER_NAME:
        return True
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                return any(Path(name).name == MARKER_NAME for name in archive.namelist())
        if path.suffix == ".mat":
            import scipy.io

            return any(name == MARKER_KEY for name, _, _ in scipy.io.whosmat(str(path)))
        with open(path, "rb") as f:
            content = pickle.load(f, encoding="latin1")
        return isinstance(content, dict) and MARKER_KEY in content
    except Exception:  # noqa: BLE001  (not readable as what it claims to be: the loader's own check says so)
        return False


def refuse_synthetic(dataset: str, paths: Iterable[Path], how_to_obtain: str) -> None:
    """Raise :class:`SyntheticDataError` naming the first of ``paths`` (folders holding the marker file,
    marker files, zips, ``.mat`` files or small pickles) that shows synthetic rehearsal data. The loaders call
    it when ``verify`` is on: MiniImageNet's count check alone would pass a full-size synthetic set."""
    for path in paths:
        if _carries_marker(path):
            raise SyntheticDataError(dataset, path / MARKER_NAME if path.is_dir() else path, how_to_obtain)


def refuse_synthetic_content(dataset: str, path: Path, content: Any, how_to_obtain: str) -> None:
    """:func:`refuse_synthetic` for a pickle the loader has already read (``content``)."""
    if isinstance(content, dict) and MARKER_KEY in content:
        raise SyntheticDataError(dataset, path, how_to_obtain)


# ---------------------------------------------------------------- the command: staged, cached, never over real data


@dataclass(frozen=True)
class Outcome:
    """What :func:`synthesize` did for one dataset."""

    dataset: str
    folder: Path
    written: bool  # False: the folder already held this set
    images: int
    bytes: int
    seconds: float
    note: str  # why it was (re)written, or when the kept set was


def _marker_text(dataset: str) -> str:
    title = TITLES[dataset]
    return (
        f"SYNTHETIC DATA FOR THE PAPER-SCALE REHEARSAL: THIS IS NOT THE {title.upper()} DATASET.\n\n"
        f"Written by `mebqat data synthesize`: the official file names, formats and sizes of {title}, filled\n"
        "with a class-dependent pattern plus noise. It exists to rehearse the pipeline at the paper's sizes\n"
        "(`make rehearse`); numbers computed on it say nothing about the paper.\n\n"
        "The mebqat loaders refuse it unless verification is off (verify=False, --no-verify, or\n"
        "`data.verify: false` in a job). For the real experiments, point the data root at the real dataset.\n"
        f"{MANIFEST_NAME} beside this file lists the sizes written.\n"
    )


def _listing(folder: Path) -> tuple[int, int, str]:
    """(files, bytes, digest of the sorted relative paths and sizes) of ``folder`` without its manifest:
    stat only, no file is read."""
    entries = []
    for directory, _, files in os.walk(folder):
        for name in files:
            path = Path(directory, name)
            relative = path.relative_to(folder).as_posix()
            if relative != MANIFEST_NAME:
                entries.append((relative, path.stat().st_size))
    entries.sort()
    digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
    return len(entries), sum(size for _, size in entries), digest


def _recipe(dataset: str, sizes: Mapping[str, int], seed: int) -> dict[str, Any]:
    return {"format": FORMAT, "dataset": dataset, "seed": seed, "sizes": dict(sizes)}


def _state(folder: Path, recipe: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """("absent" | "current" | "foreign" | a reason to rewrite, the manifest when readable)."""
    if not folder.exists():
        return "absent", None
    if folder.is_dir() and not any(folder.iterdir()):
        return "absent", None
    if not (folder / MARKER_NAME).is_file():
        return "foreign", None
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        recorded = {key: manifest[key] for key in recipe}
    except (OSError, ValueError, KeyError, TypeError):
        return "its manifest is missing or unreadable", None
    if recorded != dict(recipe):
        return f"it was written with {recorded}, not {dict(recipe)}", manifest
    files, size, digest = _listing(folder)
    if (files, size, digest) != (manifest.get("files"), manifest.get("bytes"), manifest.get("listing")):
        return "its files differ from its manifest", manifest
    return "current", manifest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _resolve_sizes(
    only: Iterable[str] | None, sizes: Mapping[str, Mapping[str, int]] | None
) -> dict[str, dict[str, int]]:
    chosen = list(dict.fromkeys(only)) if only is not None else list(DATASETS)
    unknown = [name for name in [*chosen, *(sizes or {})] if name not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset {unknown[0]!r} to synthesize; expected some of {', '.join(DATASETS)}")
    resolved = {}
    for name in chosen:
        given = dict((sizes or {}).get(name, {}))
        extra = set(given) - set(REAL_SIZES[name])
        if extra:
            raise ValueError(f"unknown size {sorted(extra)[0]!r} for {name}; its sizes: {', '.join(REAL_SIZES[name])}")
        bad = [key for key, v in given.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1]
        if bad:
            raise ValueError(f"size {bad[0]!r} of {name} must be a positive integer, got {given[bad[0]]!r}")
        resolved[name] = {**REAL_SIZES[name], **given}
    return resolved


def synthesize(
    root: Path,
    only: Iterable[str] | None = None,
    *,
    sizes: Mapping[str, Mapping[str, int]] | None = None,
    seed: int = SEED,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Write the synthetic datasets ``only`` (default: all four) under ``root`` at the official sizes, or at
    ``sizes`` (per dataset, overriding :data:`REAL_SIZES` entries; for tests). A folder already holding the
    same set is kept; one holding anything but synthetic data refuses the whole call before anything is
    written. ``on_done`` hears of each dataset as it is finished."""
    root = Path(root)
    plan = _resolve_sizes(only, sizes)
    root.mkdir(parents=True, exist_ok=True)
    lock = os.open(root, os.O_RDONLY)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"{root}: another `mebqat data synthesize` is writing there; wait for it to finish"
            ) from None
        for leftover in root.glob(f"{STAGING_PREFIX}*"):  # of a run that was killed: never complete
            shutil.rmtree(leftover, ignore_errors=True)
        states = {name: _state(root / FOLDERS[name], _recipe(name, plan[name], seed)) for name in plan}
        foreign = [name for name, (state, _) in states.items() if state == "foreign"]
        if foreign:
            folder = root / FOLDERS[foreign[0]]
            raise ValueError(
                f"{folder} exists and is not synthetic rehearsal data (it has no {MARKER_NAME}): "
                "`mebqat data synthesize` never overwrites a dataset; give a --root without real datasets"
            )
        outcomes = []
        for name, dataset_sizes in plan.items():
            state, manifest = states[name]
            if state == "current":
                assert manifest is not None
                outcome = Outcome(
                    name,
                    root / FOLDERS[name],
                    False,
                    manifest["images"],
                    manifest["bytes"],
                    0.0,
                    f"written {manifest['written_at']}",
                )
            else:
                outcome = _write_dataset(root, name, dataset_sizes, seed, state)
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
        return outcomes
    finally:
        os.close(lock)  # releases the lock


def _write_dataset(root: Path, name: str, sizes: Mapping[str, int], seed: int, state: str) -> Outcome:
    folder = root / FOLDERS[name]
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{FOLDERS[name]}-", dir=root))
    try:
        images = WRITERS[name](staging, **sizes, seed=seed)
        (staging / MARKER_NAME).write_text(_marker_text(name))
        files, size, digest = _listing(staging)
        manifest = {
            **_recipe(name, sizes, seed),
            "written_by": "mebqat data synthesize",
            "written_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "images": images,
            "files": files,
            "bytes": size,
            "listing": digest,
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; a dataset folder is not
        if folder.exists() or folder.is_symlink():  # an outdated synthetic set or an empty folder: out of the way
            old = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}old-{FOLDERS[name]}-", dir=root))
            os.replace(folder, old / "set")
            os.replace(staging, folder)
            _remove(old)
        else:
            os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    note = "new" if state == "absent" else f"rewritten: {state}"
    return Outcome(name, folder, True, images, size, time.perf_counter() - started, note)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
