"""A full disk, or a file size limit, stops a job with one line naming the file and the fix, never torch's
``unexpected pos`` or a traceback; nothing half-written is kept, and the job resumes once space is back."""

from __future__ import annotations

import errno
import json
import resource
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from mebqat_cli import MEBQAT, mebqat, one_thread_env, small_run_args

from mebqat.atomic import atomic_write

EPOCHS = 3


def run_args(data_root: Path, out: Path) -> list[str]:
    return small_run_args(data_root, out, EPOCHS, "--no-track")


def limited(*args: str, file_limit: int) -> subprocess.CompletedProcess:
    """``mebqat ARGS`` allowed to write files of ``file_limit`` bytes at most (``ulimit -f``)."""
    return subprocess.run(
        [*MEBQAT, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=one_thread_env(),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit)),
    )


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs (root and mount(8) needed: skipped without them)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize(
    "write",
    [
        lambda f: torch.save({"weights": torch.zeros(400_000)}, f),  # torch's zip writer
        lambda f: np.savez(f, weights=np.zeros(400_000)),
        lambda f: f.write(b"\0" * 2_000_000),
    ],
    ids=["torch.save", "np.savez", "plain"],
)
def test_a_write_the_full_disk_refuses_names_the_file_and_leaves_nothing(small_disk, write):
    target = small_disk / "checkpoints" / "last.pt"
    with pytest.raises(OSError) as raised:
        atomic_write(target, write)
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(target), "the file being written, not its temporary name"
    assert list(target.parent.iterdir()) == []


def test_a_job_stopped_by_the_file_size_limit_says_so_in_one_line_and_resumes(data_root, tmp_path):
    out = tmp_path / "run"
    assert mebqat("data", "build", "digits", "--root", str(data_root)).returncode == 0  # its cache is larger too
    stopped = limited(*run_args(data_root, out), file_limit=64 * 1024)  # the first checkpoint is larger
    assert stopped.returncode == 2, stopped.stderr
    errors = [line for line in stopped.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, stopped.stderr
    assert "File too large" in errors[0] and "ulimit -f" in errors[0] and f"{out / 'checkpoints'}/" in errors[0]
    assert "Traceback" not in stopped.stderr and "unexpected pos" not in stopped.stderr
    status = json.loads((out / "job_status.json").read_text())
    assert status["state"] == "failed" and "File too large" in status["reason"]
    assert not [p for p in out.rglob("*.tmp")], "nothing half-written is kept"
    again = mebqat(*run_args(data_root, out))
    assert again.returncode == 0, again.stderr
    assert (out / "metrics.json").is_file()
