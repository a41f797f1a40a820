"""The ``mebqat`` command in a new process, as the tests run it: one OpenMP thread (the machine is shared, see
conftest.py), output captured; the arguments of a smoke-scale job on the session's data root; a job trained
and evaluated; a job killed at its first checkpoint and resumed, beside the same job run straight through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

MEBQAT = [sys.executable, "-m", "mebqat"]
"""The command, run by this interpreter (so it is the code under test, wherever the console script points)."""


def one_thread_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``OMP_NUM_THREADS=1`` and ``extra``."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def mebqat(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 900, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``mebqat ARGS`` to its end, in ``env`` (default :func:`one_thread_env`) and ``cwd``."""
    return subprocess.run(
        [*MEBQAT, *args], capture_output=True, text=True, timeout=timeout, env=dict(env or one_thread_env()), cwd=cwd
    )


def job_args(data_root: Path, out: Path, setup: str, method: str, *extra: str, command: str = "train") -> list[str]:
    """The arguments of ``mebqat COMMAND`` (``train`` or ``run``) for a smoke-scale job of ``method`` on
    ``setup`` into ``out``, single-threaded, its data under ``data_root``; ``extra`` last."""
    return [
        command,
        "--setup",
        setup,
        "--method",
        method,
        "--scale",
        "smoke",
        "--out",
        str(out),
        "--threads",
        "1",
        "--set",
        f"data.root={data_root}",
        *extra,
    ]


def small_run_args(data_root: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    """``mebqat run`` of the smallest Table 2 job (SVHN's CNN, one dedicated (2,2) model; a fraction of a
    second an epoch at smoke scale) for ``epochs`` epochs."""
    return job_args(
        data_root,
        out,
        "svhn_cnn8",
        "qat",
        "--train-task",
        "(2,2)",
        "--set",
        f"train.epochs={epochs}",
        *extra,
        command="run",
    )


def trained(
    data_root: Path, out: Path, setup: str, method: str, *extra: str, env: Mapping[str, str] | None = None
) -> Path:
    """``out`` after ``mebqat train`` (a smoke-scale job, :func:`job_args`) and ``mebqat evaluate``, both of
    which must succeed."""
    done = mebqat(*job_args(data_root, out, setup, method, *extra), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    evaluated = mebqat("evaluate", str(out), "--threads", "1", env=env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    return out


def kill_at_first_checkpoint(args: list[str], out: Path, timeout: float) -> None:
    """Start ``mebqat ARGS`` (a job writing ``out``) and kill it (SIGKILL) as soon as its first checkpoint
    is written; it must not end by itself before that, nor take longer than ``timeout`` seconds."""
    process = subprocess.Popen(
        [*MEBQAT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=one_thread_env()
    )
    deadline = time.time() + timeout
    try:
        while not (out / "checkpoints" / "last.pt").exists():
            assert process.poll() is None, "training ended before its first checkpoint"
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def killed_and_resumed(
    data_root: Path, tmp_path: Path, setup: str, method: str, *extra: str, timeout: float
) -> tuple[Path, Path]:
    """(straight, resumed): a smoke-scale job trained straight through, and the same job killed at its first
    checkpoint (:func:`kill_at_first_checkpoint`, which must really interrupt it) and run again; both then
    evaluated."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = job_args(data_root, resumed, setup, method, *extra)
    kill_at_first_checkpoint(args, resumed, timeout)
    assert not (resumed / "train_summary.json").exists()  # it really was interrupted
    assert mebqat(*args).returncode == 0
    assert mebqat(*job_args(data_root, straight, setup, method, *extra)).returncode == 0
    for run in (straight, resumed):
        assert mebqat("evaluate", str(run), "--threads", "1").returncode == 0
    return straight, resumed
