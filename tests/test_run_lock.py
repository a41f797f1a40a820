"""One job at a time per run directory (mebqat/engine/runlock.py): a second `mebqat run` on a directory whose
lock a live process holds is refused at once with one line naming the holder, and changes nothing (no file,
no MLflow run); a holder killed with SIGKILL leaves a lock the next job takes over, even when a process it
forked still lives; a job that ends removes its lock file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mebqat.cli import main
from mebqat.core.rundir_layout import LOCK
from mebqat.engine.runlock import RunDirBusy, run_lock

SMOKE = ["--setup", "svhn_cnn8", "--method", "mebqat", "--scale", "smoke", "--threads", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hold(run: Path, fork_child: bool = False) -> subprocess.Popen:
    """A helper process holding the lock of ``run`` as `mebqat run` does (optionally with a forked child
    that outlives it); returns once the lock is held."""
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from mebqat.engine.rundir import RunDir
        with RunDir({str(run)!r}).claimed("run"):
            child = os.fork() if {fork_child!r} else -1
            if child == 0:
                time.sleep(120)
                os._exit(0)
            print("held", child, flush=True)
            time.sleep(120)
        """
    )
    helper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert helper.stdout is not None
    word, child = helper.stdout.readline().split()
    assert word == "held"
    helper.child = int(child)  # type: ignore[attr-defined]
    return helper


def mebqat(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    """`mebqat ARGS` in a new process, which also prints whether it imported torch; and its seconds."""
    code = (
        "import sys\nfrom mebqat.cli import main\ncode = main(sys.argv[1:])\n"
        "print('torch imported:', 'torch' in sys.modules)\nsys.exit(code)"
    )
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV, timeout=600)
    return done, time.monotonic() - began


def test_a_second_run_is_refused_at_once_and_a_killed_holders_lock_is_taken_over(tmp_path, data_root):
    run, store = tmp_path / "run", tmp_path / "mlflow.db"
    job = [*SMOKE, "--out", str(run), "--set", f"data.root={data_root}"]
    helper = hold(run, fork_child=True)
    try:
        before = files(run)
        assert list(before) == [LOCK]
        refused, seconds = mebqat("run", *job, "--uri", f"sqlite:///{store}")
        assert refused.returncode == 2, refused.stderr
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert refused.stdout.strip() == "torch imported: False"  # refused before the engine was even loaded
        assert f"is in use by another job: PID {helper.pid} on {socket.gethostname()}" in lines[0]
        assert "`mebqat run`" in lines[0] and f"`kill {helper.pid}`" in lines[0], lines[0]
        assert seconds < 60  # at once: the time to start Python and read the job, no training
        assert files(run) == before and not store.exists()  # nothing written, no MLflow run opened
        # `train` and `evaluate` of that directory are refused the same way
        for command in (["train", *job], ["evaluate", str(run)]):
            other = mebqat(*command)[0]
            assert other.returncode == 2 and f"PID {helper.pid}" in other.stderr, other.stderr
            assert other.stdout.strip() == "torch imported: False"
        assert files(run) == before
    finally:
        helper.send_signal(signal.SIGKILL)
        helper.wait()
    try:
        os.kill(helper.child, 0)  # the forked child still lives ...
        # ... and the kernel dropped the killed holder's lock all the same (the child closed its copy)
        done, _ = mebqat("run", *job, "--no-track")
    finally:
        os.kill(helper.child, signal.SIGKILL)
    assert done.returncode == 0, done.stderr
    assert f"took over the lock of a job that ended without releasing it: PID {helper.pid}" in done.stderr
    assert (run / "metrics.json").is_file() and not (run / LOCK).exists()
    epochs = [line for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    assert len(epochs) == 2  # smoke: 2 epochs, each once


def test_an_ended_job_removes_its_lock_and_the_directories_it_made_for_nothing(tmp_path, data_root, capsys):
    out = tmp_path / "a" / "b" / "run"
    # refused after the lock was taken (no CUDA here, or a bad tracking mode): nothing is left behind
    with pytest.raises(ValueError, match="tracking must be one of"):
        from mebqat.engine.job import run_job

        run_job({"train": {"epochs": 1}}, out, tracking="sideways")
    assert not (tmp_path / "a").exists()
    assert main(["train", *SMOKE, "--out", str(out), "--set", f"data.root={data_root}"]) == 0
    assert (out / "checkpoints" / "last.pt").is_file() and not (out / LOCK).exists()


def test_nested_holds_in_one_process_share_the_lock_and_other_holds_are_refused(tmp_path):
    with run_lock(tmp_path / "run", "run") as stale:
        assert stale is None and (tmp_path / "run" / LOCK).is_file()
        with run_lock(tmp_path / "run", "train"), run_lock(tmp_path / "run", "evaluate", create=False):
            pass
        assert (tmp_path / "run" / LOCK).is_file()  # the outer hold still holds it
        # another open file description of the same lock file (what another process has) is refused
        import fcntl

        fd = os.open(tmp_path / "run" / LOCK, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert not (tmp_path / "run").exists()  # made by the hold, left empty: removed


def test_a_busy_message_names_a_dead_holders_surviving_child(tmp_path):
    """A holder's PID that no longer runs while the lock is still held (a child process kept the lock
    descriptor): the line says so and how to end it."""
    run = tmp_path / "run"
    run.mkdir()
    helper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import fcntl, json, os, sys, time
                fd = os.open({str(run / LOCK)!r}, os.O_RDWR | os.O_CREAT)
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, json.dumps({{"pid": 2**22 + 12345, "host": {socket.gethostname()!r},
                                          "command": "run"}}).encode())
                print("held", flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert helper.stdout is not None and helper.stdout.readline().strip() == "held"
        with pytest.raises(RunDirBusy, match="which is no longer running: a process it started still holds"):
            with run_lock(run, "train"):
                pass
    finally:
        helper.kill()
        helper.wait()
