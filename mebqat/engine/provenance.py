"""Where a result came from: code version, packages, device, config hash: the ``provenance`` of
``metrics.json`` (docs/methods-and-engines.md, "What a job writes")."""

from __future__ import annotations

import platform
import socket
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from ..core.hashing import config_hash

PACKAGES = (
    "torch",
    "torchvision",
    "learn2learn",
    "numpy",
    "scipy",
    "pandas",
    "matplotlib",
    "mlflow",
    "snakemake",
    "scikit-learn",
)
REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(config: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "packages": package_versions(),
        "python": platform.python_version(),
        "device": device_name(device),
        "hostname": socket.gethostname(),
        "config_hash": config_hash(config),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
