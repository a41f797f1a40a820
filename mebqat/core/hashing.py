"""A job's identity: the hash of its resolved configuration (run keys, stale-run checks, the workflow's
rerun trigger)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

VOLATILE_KEYS = (("data", "root"), ("data", "verify"), ("data", "workers"), ("train", "log_every"))
"""Keys that do not change what a job computes: excluded from its hash, so moving the data or the results,
checking the data files or not, or changing how often it logs, does not make a finished job stale (nor did
adding ``data.verify`` to every config make the jobs finished before it stale)."""


def config_hash(config: Mapping[str, Any]) -> str:
    stable = json.loads(json.dumps(config))
    for section, key in VOLATILE_KEYS:
        stable.get(section, {}).pop(key, None)
    return hashlib.sha256(json.dumps(stable, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
