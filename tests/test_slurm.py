"""The SLURM profile on a real scheduler: a single-node cluster from Debian's packages (scripts/slurm_cluster.sh)
runs a smoke subset of the DAG through workflow/profiles/slurm exactly as docs/cluster.md tells a user to:
an MLflow tracking server, MLFLOW_TRACKING_URI, partition and account on the command line, nothing else.
The scheduler's own records then show that every job ran as a SLURM job with the CPUs, memory and time
limit the workflow config asks for, and no bookkeeping rule was submitted.

Needs root and Debian's slurm packages (.ci/run installs them); skipped elsewhere, saying why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow_server import mlflow_server

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "scripts" / "slurm_cluster.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
SMOKE = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
PARTITION, ACCOUNT = "debug", "mebqat"  # what scripts/slurm_cluster.sh creates
SBIN = "/usr/sbin:/sbin"
DAEMONS = ("munged", "slurmctld", "slurmd", "slurmdbd", "mariadbd", "sbatch", "sacct")
# one Table 2 setup and one few-shot setup, with dedicated QAT at (2,2) only: 3 + 3 jobs
SUBSET = ["setups=[svhn_cnn8, pn_omniglot_20w1s]", "tables=[table2, table3, table5]", "dedicated_tasks=['(2,2)']"]
SITE = ["--default-resources", f"slurm_partition={PARTITION}", f"slurm_account={ACCOUNT}"]
# the plugin's first status check comes 40 s after a submission and the next ones 10 s later each time; on a
# busy cluster that spares the scheduler, on this one it is most of the test's wall time
POLL = ["--slurm-init-seconds-before-status-checks", "5"]


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root: the test cluster's daemons run as root (CI runs .ci/run as root)"
    path = f"{os.environ.get('PATH', '')}:{SBIN}"
    missing = [name for name in DAEMONS if shutil.which(name, path=path) is None]
    if missing:
        return (
            f"Debian's SLURM packages are not installed ({', '.join(missing)} missing): "
            f"run `scripts/slurm_cluster.sh install` as root (.ci/run does)"
        )
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "the SLURM executor plugin is missing: pip install .[slurm] (make env installs it)"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and not conf.is_symlink():
        return "this machine has its own SLURM (/etc/slurm/slurm.conf); the test cluster would clash with it"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_not() is not None, reason=why_not() or "")]


@contextlib.contextmanager
def slurm_cluster(*options: str) -> Iterator[dict[str, str]]:
    """A cluster of this machine for the block; yields the environment that points SLURM's commands at it."""
    directory = tempfile.mkdtemp(prefix="mebqat-slurm-", dir="/tmp")  # short: socket paths are limited
    env = {**os.environ, "MEBQAT_SLURM_DIR": directory, "PATH": f"{os.environ['PATH']}:{SBIN}"}
    up = subprocess.run([str(CLUSTER), "up", *options], env=env, capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        print(up.stdout.strip())
        yield {**env, "SLURM_CONF": f"{directory}/etc/slurm.conf"}
    finally:
        down = subprocess.run([str(CLUSTER), "down"], env=env, capture_output=True, text=True, timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr


def snakemake(*args: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    print(f"snakemake {' '.join(args[:3])} ...: {time.monotonic() - started:.0f} s")
    return result


def minutes(limit: str) -> int:
    """sacct's Timelimit ([D-]HH:MM:SS) in minutes."""
    days, _, clock = limit.rpartition("-")
    hours, mins, secs = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + mins + (secs > 0)


def megabytes(size: str) -> float:
    value, unit = float(size[:-1]), size[-1]
    return value * {"K": 1 / 1024, "M": 1, "G": 1024}[unit]


def run_dirs(results: Path) -> dict[str, Path]:
    """{job id: run directory} of every finished job."""
    return {str(p.parent.relative_to(results / "runs")): p.parent for p in results.glob("runs/**/metrics.json")}


def job_threads(run_dir: Path) -> int:
    """The torch threads the job ran with, as its metrics.json records them ("cpu (x86_64, 1 threads)")."""
    provenance = json.loads((run_dir / "metrics.json").read_text())["provenance"]
    if "threads" in provenance:
        return int(provenance["threads"])
    return int(re.search(r"(\d+) threads?\b", provenance["device"]).group(1))


def expected_limit(job: str) -> int:
    setup = job.split("/")[2]
    return SMOKE["runtime_minutes"].get(setup, SMOKE["runtime_minutes"]["default"])


def sacct(env: dict[str, str], fields: str, *args: str) -> list[dict[str, str]]:
    out = subprocess.run(
        ["sacct", "-a", "-P", "-o", fields, *args], env=env, capture_output=True, text=True, check=True
    ).stdout
    header, *rows = out.strip().splitlines()
    return [dict(zip(header.split("|"), row.split("|"), strict=True)) for row in rows]


def test_profile_runs_a_smoke_subset_as_slurm_jobs(tmp_path, data_root):
    results = tmp_path / "results"
    started = time.monotonic()
    with mlflow_server(tmp_path / "mlflow") as uri, slurm_cluster() as env:
        env["MLFLOW_TRACKING_URI"] = uri
        run = snakemake(
            "all",
            "--profile",
            str(PROFILE.relative_to(ROOT)),
            "--configfile",
            "config/smoke.yaml",
            "--config",
            f"results={results}",
            f"data_root={data_root}",
            *SUBSET,
            *SITE,
            *POLL,
            env=env,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
        fields = "JobID,JobName,Comment,Account,Partition,State,ExitCode,AllocCPUS,ReqMem,Timelimit,ReqTRES,Elapsed"
        jobs = sacct(env, fields, "-X")
        steps = sacct(env, "JobID,MaxRSS")
        for job in jobs:
            print("|".join(job.values()))
        uri_runs = mlflow.MlflowClient(uri).search_runs(
            [e.experiment_id for e in mlflow.MlflowClient(uri).search_experiments()], max_results=1000
        )
    print(f"SLURM integration test wall time (cluster, tracking server, DAG): {time.monotonic() - started:.0f} s")

    finished = run_dirs(results)
    assert len(finished) == 6 and {job.split("/")[2] for job in finished} == {"svhn_cnn8", "pn_omniglot_20w1s"}
    # every job was one SLURM job, and nothing else was: bookkeeping rules ran on the submitting host
    by_comment = {job["Comment"]: job for job in jobs}
    assert len(by_comment) == len(jobs) == len(finished)
    assert set(by_comment) == {f"rule_job_wildcards_{job.replace('/', '_')}" for job in finished}
    for rule in ("mlflow_store", "build_tables", "track_tables", "report"):
        assert re.search(rf"^localrule {rule}:", run.stdout + run.stderr, re.MULTILINE), rule
    peak_mb = {step["JobID"].split(".")[0]: 0.0 for step in steps}
    for step in steps:
        if step["MaxRSS"]:
            peak_mb[step["JobID"].split(".")[0]] = max(peak_mb[step["JobID"].split(".")[0]], megabytes(step["MaxRSS"]))
    print("peak memory per SLURM job (MB):", {k: round(v) for k, v in sorted(peak_mb.items())})
    for job_id, run_dir in finished.items():
        record = by_comment[f"rule_job_wildcards_{job_id.replace('/', '_')}"]
        assert (record["State"], record["ExitCode"]) == ("COMPLETED", "0:0"), record
        assert (record["Partition"], record["Account"]) == (PARTITION, ACCOUNT), record
        # the job got what the config asks for, and used the CPUs it got
        assert int(record["AllocCPUS"]) == SMOKE["threads_per_job"] == job_threads(run_dir), record
        assert megabytes(record["ReqMem"]) == SMOKE["mem_mb_per_job"], record
        assert minutes(record["Timelimit"]) == expected_limit(job_id), record
        assert "gres/gpu" not in record["ReqTRES"], record  # gpus_per_job: 0 requests no GPU
        assert 0 < peak_mb[record["JobID"]] < SMOKE["mem_mb_per_job"], (record, peak_mb)
    # outputs: tables, figures, report, and one MLflow run per job on the tracking server
    for name in ("table2.csv", "table3.csv", "table5.csv"):
        assert (results / "tables" / name).stat().st_size > 0
    assert list((results / "figures").glob("*.png")) and (results / "report.html").stat().st_size > 10000
    keys = [r.data.tags["mebqat.run_key"] for r in uri_runs if r.data.tags.get("mebqat.kind") != "tables"]
    assert len(keys) == len(set(keys)) == len(finished)
    assert all(r.info.status == "FINISHED" for r in uri_runs)


def test_a_cluster_without_accounting_polls_with_squeue(tmp_path, data_root):
    """The profile's commented option for clusters without slurmdbd, uncommented; one job with 2 threads."""
    profile = tmp_path / "profile"
    profile.mkdir()
    text = (PROFILE / "profile.yaml").read_text()
    assert "# slurm-status-command: squeue" in text
    (profile / "profile.yaml").write_text(
        text.replace("# slurm-status-command: squeue", "slurm-status-command: squeue")
    )
    results = tmp_path / "results"
    job = "smoke-official/table2/svhn_cnn8/qat-w2a2/seed0"
    with slurm_cluster("--no-accounting") as env:
        no_sacct = subprocess.run(["sacct"], env=env, capture_output=True, text=True)
        assert "accounting storage is disabled" in no_sacct.stdout + no_sacct.stderr
        run = snakemake(
            "--profile",
            str(profile),
            f"{results}/runs/{job}/metrics.json",
            "--configfile",
            "config/smoke.yaml",
            "--config",
            f"results={results}",
            f"data_root={data_root}",
            "tables=[table2]",
            "dedicated_tasks=['(2,2)']",
            "threads_per_job=2",
            "--default-resources",
            f"slurm_partition={PARTITION}",
            *POLL,
            env=env,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
        # the controller's own record of every finished job (jobcomp/filetxt), since sacct has none
        records = Path(env["SLURM_CONF"]).parents[1].joinpath("log", "jobcomp.txt").read_text().splitlines()
    print("\n".join(records))
    assert len(records) == 1
    fields = dict(item.split("=", 1) for item in records[0].split() if "=" in item)
    assert (fields["JobState"], fields["ExitCode"], fields["Partition"]) == ("COMPLETED", "0:0", PARTITION)
    assert int(fields["ProcCnt"]) == 2 == job_threads(results / "runs" / job)
    assert int(fields["TimeLimit"]) == expected_limit(job)


# one mini-scale few-shot job (an epoch takes 5-10 s on one thread here), trained for as many epochs as a test needs
LONG_JOB = "mini-official/table5/pn_omniglot_20w1s/pn/seed0"


def long_job_args(results: Path, data_root: Path, epochs: int, **config: object) -> list[str]:
    """The snakemake arguments that run LONG_JOB alone with ``epochs`` epochs and ``config`` on top (in a config
    file: --config leaves the numbers inside a mapping strings), on the accounting cluster."""
    extra = results.parent / "extra-config.yaml"
    extra.write_text(yaml.safe_dump({"job_overrides": {"train": {"epochs": epochs}}, **config}))
    return [
        "--profile",
        str(PROFILE.relative_to(ROOT)),
        f"{results}/runs/{LONG_JOB}/metrics.json",
        "--configfile",
        "config/config.yaml",
        str(extra),
        "--config",
        f"results={results}",
        f"data_root={data_root}",
        "tables=[table5]",
        *SITE,
        *POLL,
    ]


def job_records(env: dict[str, str], job: str) -> list[dict[str, str]]:
    """sacct's record of every SLURM job that ran ``job``, in submission order."""
    comment = f"rule_job_wildcards_{job.replace('/', '_')}"
    records = [r for r in sacct(env, "JobID,Comment,State,ExitCode,Timelimit,Elapsed", "-X") if r["Comment"] == comment]
    for record in records:
        print("|".join(record.values()))
    return sorted(records, key=lambda r: int(r["JobID"]))


def wait_until(what: str, seconds: float, check, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert process.poll() is None, f"snakemake ended (status {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {seconds:.0f} s"
        time.sleep(1)


def test_a_cancelled_job_is_retried_not_waited_for(tmp_path, data_root):
    """sacct writes a cancelled job's state as "CANCELLED by <uid>", which snakemake-executor-plugin-slurm 2.8.0
    does not know: without mebqat/workflow/slurm_states.py the workflow waits for the job forever. With it, the
    cancel is a failure, the profile's `retries: 1` resubmits the job, which resumes and finishes."""
    results = tmp_path / "results"
    status = results / "runs" / LONG_JOB / "job_status.json"
    with slurm_cluster() as env:
        process = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *long_job_args(results, data_root, 8)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            # cancelled once it has trained an epoch, so the resubmitted job has a checkpoint to resume from
            wait_until(
                "training job with a finished epoch",
                600,
                lambda: status.exists() and json.loads(status.read_text())["durable_epoch"] >= 1,
                process,
            )
            # the one job of the workflow (sacct stores a job's comment, which names the job, once it ended)
            (first,) = subprocess.run(
                ["squeue", "-h", "-t", "RUNNING", "-o", "%i"], env=env, capture_output=True, text=True, check=True
            ).stdout.split()
            subprocess.run(["scancel", first], env=env, check=True)
            # the guard against the hang only: the resubmitted job trains a few epochs and evaluates
            output, _ = process.communicate(timeout=600)
        finally:
            if process.poll() is None:
                process.kill()
                print(process.communicate()[0][-5000:])
        records = job_records(env, LONG_JOB)
    assert process.returncode == 0, output[-5000:]
    assert [r["State"] for r in records] == ["CANCELLED by 0", "COMPLETED"], records
    assert records[0]["JobID"] == first
    assert f"SLURM-job '{first}' failed, SLURM status is: 'CANCELLED'" in output
    assert json.loads(status.read_text())["resuming"] is True  # the second job resumed from the first's epochs
    assert (results / "runs" / LONG_JOB / "metrics.json").exists()


def test_a_job_longer_than_the_time_limit_resumes_until_it_finishes(tmp_path, data_root):
    """A site cap of 1 minute per job (cluster_time_limit_minutes) for a job that needs about three: SLURM
    kills it at its limit (SIGTERM, which the job answers by ending after its last checkpoint), the rule's
    derived retries resubmit it, and each submission resumes from the last epoch checkpoint. It ends with
    the metrics of an uninterrupted run, in one MLflow run that ends FINISHED without the kills' end reason."""
    from mebqat.workflow.matrix import expand_jobs, load_matrix

    def job_spec(epochs: int) -> dict:
        workflow_config = {
            **yaml.safe_load((ROOT / "config" / "config.yaml").read_text()),
            "tables": ["table5"],
            "job_overrides": {"train": {"epochs": epochs}},
        }
        return expand_jobs(workflow_config, load_matrix(str(ROOT / workflow_config["matrix"])))[LONG_JOB].spec

    # enough epochs for ~160 s of training at this machine's current speed (an epoch took 4 s on the idle VM
    # and 12 s beside other tests): a submission trains under 60 s, so at least two are killed at the limit
    probe = tmp_path / "probe"
    subprocess.run(
        [sys.executable, "-m", "mebqat", "run", "--spec", json.dumps(job_spec(3)), "--out", str(probe)]
        + ["--threads", "1", "--device", "cpu", "--tracking", "off"],
        cwd=ROOT,
        env={**os.environ, "MEBQAT_DATA": str(data_root)},
        capture_output=True,
        check=True,
    )
    per_epoch = json.loads((probe / "train_summary.json").read_text())["train_wall_time_s"] / 3
    epochs = min(80, max(24, math.ceil(160 / per_epoch)))
    print(f"{per_epoch:.1f} s per epoch: {epochs} epochs")
    results, straight = tmp_path / "results", tmp_path / "straight"
    config = {"cluster_time_limit_minutes": 1, "runtime_minutes": {"default": 8}}
    spec = job_spec(epochs)
    # the same job uninterrupted, beside the cluster's (one thread each, as the SLURM job)
    # its log goes to a file: an unread pipe fills (64 KiB) and blocks the run mid-training
    reference_log = open(tmp_path / "straight.log", "w")  # closed below, once the run has ended
    reference = subprocess.Popen(
        [sys.executable, "-m", "mebqat", "run", "--spec", json.dumps(spec), "--out", str(straight)]
        + ["--threads", "1", "--device", "cpu", "--tracking", "off"],
        cwd=ROOT,
        env={**os.environ, "MEBQAT_DATA": str(data_root)},
        stdout=reference_log,
        stderr=subprocess.STDOUT,
    )
    try:
        with slurm_cluster() as env:
            run = snakemake(*long_job_args(results, data_root, epochs, **config), env=env, timeout=1500)
            records = job_records(env, LONG_JOB)
        assert reference.wait(timeout=900) == 0, (tmp_path / "straight.log").read_text()[-3000:]
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
        reference_log.close()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    # killed at its limit at least twice, each time resubmitted, then finished; every submission asked for 1 min
    states = [r["State"] for r in records]
    assert states[-1] == "COMPLETED" and set(states[:-1]) == {"TIMEOUT"} and len(states) >= 3, records
    assert all(minutes(r["Timelimit"]) == 1 for r in records), records
    history = [json.loads(line) for line in (results / "runs" / LONG_JOB / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    # the same results as the uninterrupted run
    resumed = json.loads((results / "runs" / LONG_JOB / "metrics.json").read_text())
    uninterrupted = json.loads((straight / "metrics.json").read_text())
    assert resumed["results"] == uninterrupted["results"] and resumed["selection"] == uninterrupted["selection"]
    # one MLflow run for the job, FINISHED, its stops recorded as interruptions and no end reason left
    client = mlflow.MlflowClient(f"sqlite:///{results}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=100)
    job_runs = [r for r in runs if r.data.tags.get("mebqat.kind") == "job"]
    assert len(job_runs) == 1, [(r.info.run_id, r.info.status) for r in job_runs]
    (finished,) = job_runs
    assert finished.info.status == "FINISHED"
    assert "mebqat.end_reason" not in finished.data.tags, finished.data.tags["mebqat.end_reason"]
    interruptions = finished.data.tags.get("mebqat.interruptions", "")
    print("interruptions:", interruptions)
    # one interruption per kill; SLURM signals the job step with SIGTERM and, KillWait later, SIGKILL, so a kill
    # reads "killed by SIGTERM" when the job saw the SIGTERM, else "stopped without a word" (CI saw both)
    stops = interruptions.count("killed by SIGTERM") + interruptions.count("stopped without a word")
    assert stops == len(records) - 1 and "killed by SIGTERM" in interruptions, interruptions
