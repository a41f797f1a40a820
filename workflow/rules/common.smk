# Configuration, validation and the job matrix (no rules here).

import functools
import json
import os
import re
import shlex
import sys
from pathlib import Path

from mebqat.workflow.config import validate_workflow_config

validate_workflow_config(config, workflow.source_path("../schemas/config.schema.yaml"))

from mebqat.core.rundir_layout import METRICS, RunFiles  # noqa: E402  (after validation: clear errors first)
from mebqat.core.data_fingerprint import stat_token  # noqa: E402
from mebqat.workflow.matrix import expand_jobs, load_matrix  # noqa: E402
from mebqat.workflow.resources import job_resources, job_retries  # noqa: E402
from mebqat.workflow.slurm_states import install as complete_slurm_states  # noqa: E402
from mebqat.core.scales import SCALES  # noqa: E402

# on SLURM: a job sacct reports as "CANCELLED by <uid>" counts as cancelled (mebqat/workflow/slurm_states.py)
complete_slurm_states()

MATRIX = load_matrix(config["matrix"])
JOBS = expand_jobs(config, MATRIX)
RESULTS = config["results"].rstrip("/")
TABLES = sorted(config["tables"])
# every command runs the mebqat of the Python that runs Snakemake (no PATH assumptions)
MEBQAT = f"{sys.executable} -m mebqat"
MLFLOW_URI = (config["mlflow_uri"] or os.environ.get("MLFLOW_TRACKING_URI")
              or f"sqlite:///{os.path.abspath(RESULTS)}/mlflow.db")
DEVICE = config["device"]
# a damaged, read-only or foreign SQLite store is named when the workflow starts, also when every job is up to
# date (a server is checked by the mlflow_store rule and by the follower)
if workflow.is_main_process and MLFLOW_URI.startswith("sqlite:"):
    from mebqat.tracking.store import check_store  # noqa: E402

    check_store(MLFLOW_URI, thorough=True)
# scale rehearsal: each job runs under `mebqat rehearse` (killed after its first epoch, resumed, measured)
REHEARSAL = SCALES[config["scale"]].rehearsal
# jobs find the datasets through the environment of their shell, so moving the data changes no job's
# parameters (and does not rerun it); the prefix keeps Snakemake's strict-bash default
DATA_ROOT = os.path.abspath(config["data_root"])
shell.prefix(f"set -euo pipefail; export MEBQAT_DATA={shlex.quote(DATA_ROOT)}; ")

wildcard_constraints:
    job="|".join(re.escape(job) for job in JOBS) or "no-jobs",


def run_dir(wildcards):
    return f"{RESULTS}/runs/{wildcards.job}"


def job_spec(wildcards):
    return json.dumps(JOBS[wildcards.job].spec, sort_keys=True)


# one stat (or folder walk) per data file per DAG build, however many jobs read it
DATA_STAT = functools.cache(stat_token)


def job_rerun_key(wildcards):
    """The job's resolved-config hash, and the data files it recorded reading whose size or mtime changed since
    (mebqat/core/data_fingerprint.py, rerun_note): a change of the config, of a setup preset or of the job's data
    reruns it. Only the job's data_fingerprint.json is read and its files stat'ed: nothing is hashed here."""
    note = RunFiles(run_dir(wildcards)).data_rerun_note(Path(DATA_ROOT), DATA_STAT)
    return f"{JOBS[wildcards.job].config_hash} {note}" if note else JOBS[wildcards.job].config_hash


def job_setup(wildcards):
    return JOBS[wildcards.job].spec["setup"]


# threads, CPUs, GPUs, memory and time of every job, from the config (mebqat/workflow/resources.py)
JOB_RESOURCES = job_resources(config, job_setup)
# resubmissions of a job killed at the site's time limit (cluster_time_limit_minutes), or None: the profile's
JOB_RETRIES = job_retries(config, {job.spec["setup"] for job in JOBS.values()})


def metrics_files(tables=None):
    return [f"{RESULTS}/runs/{job}/{METRICS}" for job, spec in JOBS.items()
            if tables is None or spec.table in tables]
