"""Atomic output (:mod:`mebqat.atomic`): each table or figure is written to a temp file beside its target
and renamed over it, so an interrupted build never leaves a half-written file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..atomic import atomic_write


def write_text(path: Path, text: str) -> Path:
    atomic_write(path, lambda handle: handle.write(text.encode()))
    return path


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    return write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def write_figure(path: Path, figure: Figure, dpi: int = 150) -> Path:
    fmt = path.suffix.lstrip(".")
    atomic_write(path, lambda handle: figure.savefig(handle, format=fmt, dpi=dpi, bbox_inches="tight"))
    return path
