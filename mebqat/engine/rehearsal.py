"""What the paper-scale rehearsal asks of a training job (``mebqat rehearse``, docs/rehearsal.md): to kill
itself with SIGKILL right after a chosen epoch became durable, leaving a digest of its whole training state,
and, when it resumes, a digest of the state it restored. Equal digests mean the checkpoint carried
everything the job holds (model, optimizer, scheduler, the method's and the data's state, pass counts, RNG).

Both are switched on by environment variables that only ``mebqat rehearse`` sets, so that the command a job
runs, its configuration and its hash stay the paper's."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .rundir import write_json
from .runtime import rng_state

KILL_AFTER_EPOCH = "MEBQAT_REHEARSAL_KILL_AFTER_EPOCH"
"""Kill the job (SIGKILL, as an out-of-memory killer or a node failure would) once this epoch is durable."""
STATE_FILE = "MEBQAT_REHEARSAL_STATE_FILE"
"""Where the digest of the state is written: at the kill, and (``<file>.resumed``) after a resume."""
RESUMED_SUFFIX = ".resumed"


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        h.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        h.update(f"A{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
    elif isinstance(value, Mapping):
        h.update(f"M{len(value)}".encode())
        for key in sorted(value, key=repr):
            _feed(h, key)
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for item in value:
            _feed(h, item)
    else:
        h.update(f"V{type(value).__name__}:{value!r}".encode())


def state_digest(components: Mapping[str, Any]) -> dict[str, str]:
    """SHA-256 of each component's ``state_dict()`` and of the RNG states, by name."""
    digests = {}
    for name, component in sorted(components.items()):
        h = hashlib.sha256()
        _feed(h, component.state_dict())
        digests[name] = h.hexdigest()
    h = hashlib.sha256()
    _feed(h, rng_state())
    digests["rng"] = h.hexdigest()
    return digests


def _write(path: Path, epoch: int, components: Mapping[str, Any]) -> None:
    write_json(path, {"epoch": epoch, "digest": state_digest(components)})


def after_epoch(epoch: int, components: Mapping[str, Any]) -> None:
    """Called once ``epoch`` is durable: under the rehearsal's kill switch, record the state and die."""
    wanted, target = os.environ.get(KILL_AFTER_EPOCH), os.environ.get(STATE_FILE)
    if wanted is None or target is None or int(wanted) != epoch:
        return
    _write(Path(target), epoch, components)
    os.kill(os.getpid(), signal.SIGKILL)


def after_resume(components: Mapping[str, Any]) -> None:
    """Called once a resumed job restored its last checkpoint: record the restored state's digest."""
    target = os.environ.get(STATE_FILE)
    if target is not None and Path(target).is_file():
        recorded = json.loads(Path(target).read_text())
        _write(Path(target + RESUMED_SUFFIX), recorded["epoch"], components)


def held_bytes(data: Any) -> int:
    """Bytes of the tensors and arrays a problem's data object holds (its splits' images and labels), each
    storage counted once."""
    seen: set[int] = set()
    total = 0

    def visit(value: Any, depth: int) -> None:
        nonlocal total
        if isinstance(value, torch.Tensor):
            key = value.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                total += value.untyped_storage().nbytes()
        elif isinstance(value, np.ndarray):
            base = value if value.base is None else value.base
            if isinstance(base, np.ndarray) and id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
        elif depth < 3 and isinstance(value, (list, tuple)):
            for item in value:
                visit(item, depth + 1)
        elif depth < 3 and isinstance(value, Mapping):
            for item in value.values():
                visit(item, depth + 1)
        elif depth < 3 and hasattr(value, "__dict__") and not isinstance(value, type):
            for item in vars(value).values():
                visit(item, depth + 1)

    visit(data, 0)
    return total
