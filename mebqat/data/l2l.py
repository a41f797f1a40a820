"""learn2learn, imported on first use (it costs seconds) and without the deprecation banner its ``gym``
dependency prints on import."""

from __future__ import annotations

import contextlib
import io
from types import ModuleType


def learn2learn() -> ModuleType:
    with contextlib.redirect_stderr(io.StringIO()):
        import learn2learn as l2l
        import learn2learn.vision.datasets  # noqa: F401  (MiniImagenet)
    return l2l
