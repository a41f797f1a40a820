"""What each training job asks of the machine or the scheduler: the one place that turns the workflow config
into Snakemake threads and resources for the ``job`` rule (and so into ``sbatch`` options on SLURM).

    threads         threads_per_job                          torch threads of the job
    cpus_per_task   the job's threads                        equal to them even under --set-threads
    gpu             gpus_per_job                             0: no GPU request at all (the SLURM plugin
                                                             adds --gpus only for a positive count)
    mem_mb          mem_mb_per_job                           MB
    runtime         runtime_minutes[setup], else ["default"] minutes (sbatch -t)

Site settings (partition, account) are not here: they belong to the cluster profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..core.config import ConfigError, find_setup

DEFAULT = "default"


def check(config: Mapping[str, Any]) -> None:
    """Refuse a ``runtime_minutes`` entry that names no setup (a typo would silently fall back to the default)."""
    for name in config["runtime_minutes"]:
        if name == DEFAULT:
            continue
        try:
            find_setup(name)
        except ConfigError as err:
            raise ConfigError(f"config key runtime_minutes.{name}: {err}; fix the name or remove the entry") from None


def runtime_minutes(config: Mapping[str, Any], setup: str) -> int:
    limits = config["runtime_minutes"]
    return int(limits.get(setup, limits[DEFAULT]))


def job_resources(config: Mapping[str, Any], setup_of: Callable[[Any], str]) -> dict[str, Callable[..., int]]:
    """Snakemake ``resources:`` of the job rule; ``setup_of(wildcards)`` names the job's setup."""
    check(config)
    return {
        "cpus_per_task": lambda wildcards, threads: threads,
        "gpu": lambda wildcards: int(config["gpus_per_job"]),
        "mem_mb": lambda wildcards: int(config["mem_mb_per_job"]),
        "runtime": lambda wildcards: runtime_minutes(config, setup_of(wildcards)),
    }
