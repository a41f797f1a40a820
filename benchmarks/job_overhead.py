"""The fixed cost of a workflow job in core-seconds: everything a job's processes spend that is not model
computation (training steps, validation, evaluation) — interpreter start, imports, data, the MLflow store,
checkpoints, logging — measured on real smoke-scale jobs, for three paths:

* ``follower``: what the workflow runs — ``mebqat run --tracking follower`` (no MLflow in the job) plus the
  job's share of the follower's work (``mebqat track follow --once`` over the finished job, less the same
  command over no job: the follower's start-up is paid once per workflow, printed separately);
* ``in-process``: ``mebqat run`` writing its own MLflow run (what a user gets running one job by hand);
* ``three processes``: ``mebqat train``, ``evaluate``, ``track log``, the path of the first workflow.

    .venv/bin/python benchmarks/job_overhead.py [--repeats 3] [--device cpu]

Goal (issue 9): at most 5 core-seconds of fixed cost per job. Each process reports its CPU time by phase
($MEBQAT_TIMING_FILE, see mebqat/engine/timing.py); the MLflow store and the stand-in caches are made
before timing, as the workflow makes them once before its jobs. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

JOBS = {
    "Table 2 (svhn_cnn8, mebqat)": ["--setup", "svhn_cnn8", "--method", "mebqat"],
    "Table 4 (maml_omniglot_20w1s, mebqat_maml)": ["--setup", "maml_omniglot_20w1s", "--method", "mebqat_maml"],
    "Table 5 (pn_miniimagenet_5w1s, pn)": ["--setup", "pn_miniimagenet_5w1s", "--method", "pn"],
}
GOAL = 5.0
PATHS = ("follower", "in-process", "three processes")


def mebqat(args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run one mebqat command; its timing report (CPU seconds by phase)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        report = Path(handle.name)
    done = subprocess.run(
        [sys.executable, "-m", "mebqat", *args],
        env={**env, "MEBQAT_TIMING_FILE": str(report)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"job_overhead: `mebqat {' '.join(args)}` failed:\n{done.stderr[-2000:]}")
    result = json.loads(report.read_text())
    report.unlink()
    return result


def follower_cpu(root: Path, uri: str, env: dict[str, str]) -> float:
    return mebqat(["track", "follow", str(root), "--once", "--uri", uri], env)["total_cpu_s"]


def one_job(
    job: list[str], root: Path, uri: str, data: Path, device: str, path: str, env: dict[str, str], follower_start: float
) -> dict:
    out = root / "run"
    common = [
        *job,
        "--scale",
        "smoke",
        "--set",
        f"data.root={data}",
        "--out",
        str(out),
        "--threads",
        "1",
        "--device",
        device,
    ]
    if path == "follower":
        report = mebqat(["run", *common, "--tracking", "follower"], env)
        share = max(0.0, follower_cpu(root, uri, env) - follower_start)
        return {
            "fixed": report["fixed_cpu_s"] + share,
            "total": report["total_cpu_s"] + share,
            "compute": report["compute_cpu_s"],
            "to_first_step": report.get("at_first_step_cpu_s", float("nan")),
            "follower": share,
        }
    if path == "in-process":
        reports = [mebqat(["run", *common, "--uri", uri], env)]
    else:
        reports = [
            mebqat(["train", *common], env),
            mebqat(["evaluate", str(out), "--threads", "1", "--device", device], env),
            mebqat(["track", "log", str(out), "--uri", uri], env),
        ]
    return {
        "fixed": sum(r["fixed_cpu_s"] for r in reports),
        "total": sum(r["total_cpu_s"] for r in reports),
        "compute": sum(r["compute_cpu_s"] for r in reports),
        "to_first_step": reports[0].get("at_first_step_cpu_s", float("nan")),
        "follower": 0.0,
    }


FIRST_GRADIENT = """
import time, sys, torch
from mebqat.kernels.functional import {name}
x = torch.ones(3)
start = time.process_time()
{name}(lambda p: ((p["x"] * p["x"]).sum(), ()), {{"x": x}})
print(time.process_time() - start, "torch._dynamo" in sys.modules)
"""


def first_gradient_cpu(name: str, env: dict[str, str]) -> tuple[float, bool]:
    """CPU seconds of the first gradient a fresh process takes with ``mebqat.kernels.functional.<name>``, and
    whether it imported torch._dynamo (the first ``torch.func.grad`` does)."""
    out = subprocess.run(
        [sys.executable, "-c", FIRST_GRADIENT.format(name=name)], env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), out[1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "data"
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        for name in ("digits", "glyphs28", "glyphs84"):
            subprocess.run(
                [sys.executable, "-m", "mebqat", "data", "build", name, "--root", str(data)],
                env=env,
                check=True,
                capture_output=True,
            )
        subprocess.run(
            [sys.executable, "-m", "mebqat", "track", "init", "--uri", uri], env=env, check=True, capture_output=True
        )
        empty = tmp_path / "no-runs"
        empty.mkdir()
        follower_start = statistics.median(follower_cpu(empty, uri, env) for _ in range(args.repeats))
        print(f"fixed cost per job, core-seconds (median of {args.repeats}; device {args.device}; goal ≤ {GOAL})")
        print(f"{'job':<44} {'path':<16} {'fixed':>6} {'to 1st step':>11} {'follower':>8} {'compute':>8} {'total':>6}")
        for label, job in JOBS.items():
            for path in args.paths:
                runs = []
                for repeat in range(args.repeats):
                    root = tmp_path / f"r{repeat}-{path.replace(' ', '_')}-{abs(hash(label))}"
                    runs.append(one_job(job, root, uri, data, args.device, path, env, follower_start))
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                print(
                    f"{label:<44} {path:<16} {med['fixed']:6.2f} {med['to_first_step']:11.2f} "
                    f"{med['follower']:8.2f} {med['compute']:8.2f} {med['total']:6.2f}"
                )
        print(
            f"follower start-up (imports, store), once per workflow: {follower_start:.2f} core-seconds "
            f"(~{follower_start / 115:.2f} per job over the default run's 115 jobs; not in 'fixed')"
        )
        old = [first_gradient_cpu("functorch_gradient", env) for _ in range(args.repeats)]
        new = [first_gradient_cpu("autograd_gradient", env) for _ in range(args.repeats)]
        old_s, new_s = statistics.median(t for t, _ in old), statistics.median(t for t, _ in new)
        print(
            f"first gradient of a few-shot job, core-seconds (counted in 'compute'): torch.func.grad "
            f"{old_s:.2f} (imports torch._dynamo: {old[0][1]}; the batched engines), plain autograd {new_s:.3f} "
            f"(imports it: {new[0][1]}; the sequential engines, the CPU default): {old_s - new_s:.2f} saved"
        )


if __name__ == "__main__":
    main()
