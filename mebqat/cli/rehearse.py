"""Run one job as the paper-scale rehearsal runs it (docs/rehearsal.md): `mebqat run`, killed with SIGKILL
once its first epoch is durable, then run again, which resumes it, finishes training and evaluates. Beside
the job's own files it leaves ``rehearsal/summary.json``: each execution's peak resident memory against the
job's memory request, seconds per update, the wait for a training batch against the update itself, the time
to open the data and the bytes it holds, the checkpoint's size, and whether the resumed state equals the
state at the kill (a digest of every component, see mebqat/engine/rehearsal.py).

Example:
  mebqat rehearse --spec '{setup: svhn_cnn8, method: mebqat, scale: rehearsal}' --out DIR --threads 1 --mem-mb 16000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..core.config import ConfigError
from ..core.rundir_layout import RunFiles
from .jobspec import add_job_arguments, job_config, positive_int
from .run import add_run_arguments

NAME = "rehearse"
HELP = "run one job killed after its first epoch and resumed, measuring memory, time and resume (the rehearsal)"
FOLDER = "rehearsal"
SUMMARY = "summary.json"
STATE_AT_KILL = "state-at-kill.json"
KILLED, RESUMED = "killed", "resumed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    add_run_arguments(parser)
    parser.add_argument(
        "--mem-mb", type=positive_int, required=True, help="the memory the job requests (MB), to compare its peak with"
    )
    parser.add_argument(
        "--kill-after-epoch", type=positive_int, default=1, help="the epoch after which the job is killed (default 1)"
    )


def _child_argv(args: argparse.Namespace) -> list[str]:
    """`mebqat run` with this command's job, runtime and tracking flags."""
    argv = [sys.executable, "-m", "mebqat", "run", "--out", str(args.out), "--tracking", args.tracking]
    for flag, value in (
        ("--config", args.config),
        ("--spec", args.spec),
        ("--setup", args.setup),
        ("--method", args.method),
        ("--scale", args.scale),
        ("--fidelity", args.fidelity),
        ("--seed", args.seed),
        ("--train-task", args.train_task),
        ("--device", args.device),
        ("--threads", args.threads),
        ("--uri", args.uri),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for text in args.switch:
        argv += ["--switch", text]
    for text in args.overrides:
        argv += ["--set", text]
    if args.replace_stale:
        argv.append("--replace-stale")
    return argv


def _execute(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one execution; its exit (a signal as a negative number), wall time and peak resident memory."""
    began = time.perf_counter()
    child = subprocess.Popen(argv, env=env)

    def forward(signum: int, frame: Any) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        _, status, usage = os.wait4(child.pid, 0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit": child.returncode,
        "wall_s": round(time.perf_counter() - began, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _per(total: Any, count: Any) -> float | None:
    return round(float(total) / int(count), 4) if total is not None and count else None


def summarize(
    config: dict[str, Any], run: RunFiles, folder: Path, executions: dict[str, dict[str, Any]], mem_mb: int
) -> dict[str, Any]:
    """The rehearsal's record of one job (``rehearsal/summary.json``)."""
    kill_record = _read_json(folder / STATE_AT_KILL)
    at_kill = kill_record.get("digest")
    resumed = _read_json(folder / (STATE_AT_KILL + ".resumed")).get("digest")  # engine.rehearsal.RESUMED_SUFFIX
    differing = sorted(
        k for k in set(at_kill or {}) | set(resumed or {}) if (at_kill or {}).get(k) != (resumed or {}).get(k)
    )
    timings = {name: _read_json(folder / f"timing-{name}.json") for name in executions}
    measured = timings.get(RESUMED) or {}
    first = timings.get(KILLED) or {}
    train_summary = _read_json(run.summary)
    checkpoints = {p.name: p.stat().st_size for p in sorted(run.checkpoints.glob("*.pt"))}
    peak = max(e["peak_rss_mb"] for e in executions.values())
    job = config["job"]
    s_per_update = _per(measured.get("update_wall_s"), measured.get("update_count"))
    wait_per_batch = _per(measured.get("batch_wait_wall_s"), measured.get("batch_wait_count"))
    return {
        "job": {k: job[k] for k in ("table", "setup", "method", "train_task", "scale", "fidelity", "seed")},
        "dataset": config["data"]["name"],
        "mem_mb_request": mem_mb,
        "peak_rss_mb": peak,
        "executions": executions,
        "killed_after_epoch": kill_record.get("epoch"),
        "killed": executions.get(KILLED, {}).get("exit") == -int(signal.SIGKILL),
        "resume_same_state": bool(at_kill) and bool(resumed) and not differing,
        "state_differs_in": differing,
        "updates": train_summary.get("updates"),
        "s_per_update": s_per_update,
        "batch_wait_s": wait_per_batch,
        "load_to_step": round(wait_per_batch / s_per_update, 4)
        if wait_per_batch is not None and s_per_update
        else None,
        "data_open_s": measured.get("data_open_wall_s", first.get("data_open_wall_s")),
        "test_data_open_s": measured.get("test_data_open_wall_s"),
        "data_bytes": measured.get("data_bytes", first.get("data_bytes")),
        "test_data_bytes": measured.get("test_data_bytes"),
        "validation_s": measured.get("validation_wall_s"),
        "evaluation_s": measured.get("evaluation_wall_s"),
        "checkpoint_bytes": checkpoints,
    }


def run(args: argparse.Namespace) -> int:
    config = job_config(args)  # every input checked before anything runs
    epochs = config["train"]["epochs"]
    if epochs <= args.kill_after_epoch:
        raise ConfigError(
            f"--kill-after-epoch {args.kill_after_epoch}: the job trains {epochs} epoch(s), so it would never "
            f"resume; give a smaller epoch or a job with more epochs"
        )
    run_files = RunFiles(Path(args.out))
    folder = run_files.root / FOLDER
    plan: list[tuple[str, dict[str, str]]] = [(RESUMED, {})]
    if run_files.last.is_file():
        # an earlier rehearsal of this job was interrupted after its kill (Ctrl-C, a cancelled workflow):
        # finish it; its summary keeps what the earlier executions recorded, and says it was not killed here
        print(f"mebqat rehearse: {run_files.root} holds a checkpoint: resuming it only", file=sys.stderr)
    else:
        plan.insert(0, (KILLED, {"MEBQAT_REHEARSAL_KILL_AFTER_EPOCH": str(args.kill_after_epoch)}))
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            stale.unlink()
    argv = _child_argv(args)
    state_file = str(folder / STATE_AT_KILL)
    executions: dict[str, dict[str, Any]] = {}
    for name, extra in plan:
        env = {
            **os.environ,
            **extra,
            "MEBQAT_REHEARSAL_STATE_FILE": state_file,
            "MEBQAT_TIMING_FILE": str(folder / f"timing-{name}.json"),
        }
        print(f"mebqat rehearse: {name} execution: {' '.join(argv[3:5])}", file=sys.stderr, flush=True)
        executions[name] = _execute(argv, env)
        expected = -int(signal.SIGKILL) if name == KILLED else 0
        if executions[name]["exit"] != expected:
            raise RuntimeError(
                f"the {name} execution of {run_files.root} ended with exit {executions[name]['exit']}, expected "
                f"{expected}: see the job's log above"
            )
    summary = summarize(config, run_files, folder, executions, args.mem_mb)
    atomic_write(folder / SUMMARY, lambda f: f.write((json.dumps(summary, indent=1) + "\n").encode()))
    state = "the same state" if summary["resume_same_state"] else f"a DIFFERENT state ({summary['state_differs_in']})"
    print(
        f"mebqat rehearse: killed after epoch {summary['killed_after_epoch']}, resumed to {state}; peak "
        f"{summary['peak_rss_mb']:.0f} MB of {args.mem_mb} MB requested",
        file=sys.stderr,
    )
    return 0
