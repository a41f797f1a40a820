"""What each job asks for comes from the workflow config (mebqat/workflow/resources.py): checked here without
a scheduler; tests/test_slurm.py checks what a real SLURM cluster granted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mebqat.core.config import ConfigError, resolve_job
from mebqat.workflow.matrix import expand_jobs, load_matrix
from mebqat.workflow.resources import job_resources, job_retries, resubmissions, runtime_minutes

ROOT = Path(__file__).resolve().parents[1]


def config(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


def resources_of(name: str) -> tuple[dict, dict]:
    """(config, {job id: {resource: value}}) for every job of a shipped config, threads as the config sets them."""
    cfg = config(name)
    jobs = expand_jobs(cfg, load_matrix(str(ROOT / cfg["matrix"])))
    rules = job_resources(cfg, lambda wildcards: jobs[wildcards.job].spec["setup"])
    values = {}
    for job in jobs:
        wildcards = SimpleNamespace(job=job)
        values[job] = {
            name: (rule(wildcards, cfg["threads_per_job"]) if name == "cpus_per_task" else rule(wildcards))
            for name, rule in rules.items()
        }
    return cfg, values


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_every_job_asks_for_what_its_config_says(name):
    cfg, values = resources_of(name)
    assert values
    for job, asked in values.items():
        assert asked["cpus_per_task"] == cfg["threads_per_job"]
        assert asked["gpu"] == cfg["gpus_per_job"]
        assert asked["mem_mb"] == cfg["mem_mb_per_job"]
        setup = job.split("/")[2]
        assert asked["runtime"] == cfg["runtime_minutes"].get(setup, cfg["runtime_minutes"]["default"])


def test_paper_limits_are_per_setup_and_cover_the_longest_budgets():
    cfg, values = resources_of("paper.yaml")
    limits = cfg["runtime_minutes"]
    setups = {job.split("/")[2] for job in values}
    assert setups <= set(limits)  # every paper setup has its own limit, none falls back to the default
    assert values and all(v["gpu"] == 1 for v in values.values())
    # the longest budget (600 epochs of MobileNetV2) gets the longest limit, the short PN budgets the shortest
    assert limits["cifar10_mobilenetv2"] == max(limits.values())
    assert max(limits[s] for s in setups if s.startswith("pn_")) < min(limits[s] for s in setups if "maml" in s)


def test_cpus_follow_threads_set_on_the_command_line():
    cfg, _ = resources_of("paper.yaml")
    rules = job_resources(cfg, lambda wildcards: "svhn_cnn8")
    assert rules["cpus_per_task"](SimpleNamespace(job="x"), 7) == 7


def test_a_runtime_for_an_unknown_setup_is_refused():
    cfg = {**config("config.yaml"), "runtime_minutes": {"default": 5, "svhn_cnn": 3}}
    with pytest.raises(ConfigError, match=r"runtime_minutes\.svhn_cnn: unknown setup .*fix the name"):
        job_resources(cfg, lambda wildcards: "svhn_cnn8")


def test_the_workflow_refuses_a_bad_runtime_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"runtime_minutes": {"default": 5, "svhn_cnn": 3}, "results": str(tmp_path / "r")}))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "tables", "--configfile", "config/config.yaml", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "runtime_minutes.svhn_cnn: unknown setup" in result.stdout + result.stderr
    assert not (tmp_path / "r").exists()


def test_snakemake_loads_the_workflow_profile_which_limits_no_gpus():
    """profiles/default beside the Snakefile is where Snakemake looks; a global `gpu` limit there would also cap
    GPU jobs across a whole cluster, since a workflow profile applies on top of the SLURM profile."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "tables"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "workflow specific profile profiles/default" in result.stdout + result.stderr
    profile = yaml.safe_load((ROOT / "profiles" / "default" / "profile.yaml").read_text())
    assert "gpu" not in (profile.get("resources") or {})
    slurm = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "profile.yaml").read_text())
    assert slurm["executor"] == "slurm"
    # sizes come from the config; a set-resources block here would be replaced whole by one on the command line
    assert not {"set-resources", "set-threads", "default-resources", "resources"} & set(slurm)


def test_one_model_per_bitwidth_comes_from_the_method_registry(tmp_path):
    """The matrix names setups only: a per_bitwidth method gets one job per evaluated bitwidth, without
    (FP,FP) where its FP row comes from the plain method (fp_row_from)."""
    from mebqat.core.registry import METHODS

    cfg = config("paper.yaml")
    names = {job.split("/")[3] for job in expand_jobs(cfg, load_matrix(str(ROOT / cfg["matrix"])))}
    split = {name.split("-")[0] for name in names if "-" in name}
    assert split == {m.name for m in METHODS if m.per_bitwidth}
    assert {name.split("-")[0] for name in names if name.endswith("-wFPaFP")} == {
        m.name for m in METHODS if m.per_bitwidth and m.fp_row_from is None
    }
    old = tmp_path / "tables.yaml"
    old.write_text(yaml.safe_dump({"table2": {"setups": ["svhn_cnn8"], "one_model_per_bitwidth": {"qat": "all"}}}))
    with pytest.raises(ConfigError, match="one_model_per_bitwidth is not read any more.*method registry"):
        load_matrix(str(old))


def test_a_site_time_cap_shortens_each_submission_and_adds_resubmissions():
    """cluster_time_limit_minutes: each submission asks for at most the cap; the rule is retried often enough
    for the longest job (ceil(needed / cap) - 1 resubmissions) plus once for a genuine failure."""
    cfg = {**config("paper.yaml"), "cluster_time_limit_minutes": 2880}  # a 48-hour cap
    assert job_retries(cfg, ["pn_omniglot_20w1s"]) == 1  # 60 min fits: only the retry after a failure
    assert runtime_minutes(cfg, "cifar10_mobilenetv2") == 2880 and resubmissions(cfg, "cifar10_mobilenetv2") == 1
    assert runtime_minutes(cfg, "svhn_cnn8") == 1200 and resubmissions(cfg, "svhn_cnn8") == 0
    cfg["cluster_time_limit_minutes"] = 1440  # a 24-hour cap: 3000 min take 3 submissions, 1200 min one
    assert [resubmissions(cfg, s) for s in ("cifar10_mobilenetv2", "cifar10_preact_resnet20", "svhn_cnn8")] == [2, 0, 0]
    assert job_retries(cfg, ["cifar10_mobilenetv2", "svhn_cnn8"]) == 3
    assert job_retries(cfg, ["svhn_cnn8"]) == 1
    cfg["cluster_time_limit_minutes"] = 1200  # a cap equal to a job's time is no resubmission for it
    assert resubmissions(cfg, "svhn_cnn8") == 0 and resubmissions(cfg, "cifar10_preact_resnet20") == 0


def test_without_a_cap_the_profile_decides_retries():
    for name in ("config.yaml", "smoke.yaml", "paper.yaml"):
        cfg = config(name)
        assert cfg["cluster_time_limit_minutes"] is None
        assert job_retries(cfg, ["svhn_cnn8"]) is None  # the rule's retries unset: the profile's `retries: 1`


@pytest.mark.parametrize("name", ["smoke.yaml", "paper.yaml"])
def test_every_job_asks_for_at_most_the_cap(name):
    cfg = {**config(name), "cluster_time_limit_minutes": 300}
    jobs = expand_jobs(cfg, load_matrix(str(ROOT / cfg["matrix"])))
    rules = job_resources(cfg, lambda wildcards: jobs[wildcards.job].spec["setup"])
    for job in jobs:
        needed = cfg["runtime_minutes"].get(job.split("/")[2], cfg["runtime_minutes"]["default"])
        assert rules["runtime"](SimpleNamespace(job=job)) == min(needed, 300)


def test_job_overrides_reach_every_job_and_a_bad_one_names_the_key():
    cfg = {**config("smoke.yaml"), "tables": ["table5"], "job_overrides": {"train": {"epochs": 7}}}
    jobs = expand_jobs(cfg, load_matrix(str(ROOT / cfg["matrix"])))
    plain = expand_jobs({**cfg, "job_overrides": {}}, load_matrix(str(ROOT / cfg["matrix"])))
    assert jobs.keys() == plain.keys()
    for job_id, job in jobs.items():
        assert resolve_job(job.spec)["train"]["epochs"] == 7
        assert resolve_job(job.spec)["train"]["engine"] == cfg["engine"]  # the workflow's own keys stay
        assert job.config_hash != plain[job_id].config_hash  # the override reruns the jobs it changes
    cfg["job_overrides"] = {"train": {"epochz": 7}}
    with pytest.raises(ConfigError, match=r"config key job_overrides makes job .*'epochz'.*fix or remove"):
        expand_jobs(cfg, load_matrix(str(ROOT / cfg["matrix"])))
