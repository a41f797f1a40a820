"""What each training job asks of the machine or the scheduler: the one place that turns the workflow config
into Snakemake threads and resources for the ``job`` rule (and so into ``sbatch`` options on SLURM).

    threads         threads_per_job                          torch threads of the job
    cpus_per_task   the job's threads                        equal to them even under --set-threads
    gpu             gpus_per_job                             0: no GPU request at all (the SLURM plugin
                                                             adds --gpus only for a positive count)
    mem_mb          mem_mb_per_job                           MB
    runtime         runtime_minutes[setup], else ["default"] minutes (sbatch -t), at most
                    cluster_time_limit_minutes

and the rule's ``retries`` (:func:`job_retries`): with a site cap on a job's time, a job that needs longer is
killed at the cap and resubmitted, resuming from its last epoch checkpoint, as often as its time needs.

Site settings (partition, account) are not here: they belong to the cluster profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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


GENUINE_FAILURE_RETRIES = 1
"""Resubmissions beyond those a time cap needs: one, for a node failure or another one-off (the profile's
``retries: 1``, which the rule's own ``retries`` replaces when there is a cap)."""


def expected_minutes(config: Mapping[str, Any], setup: str) -> int:
    """The time a job of ``setup`` may need in all (its ``runtime_minutes``), whatever the site allows a job."""
    limits = config["runtime_minutes"]
    return int(limits.get(setup, limits[DEFAULT]))


def runtime_minutes(config: Mapping[str, Any], setup: str) -> int:
    """The time limit of one submission: the job's expected time, at most the site's cap."""
    cap = config.get("cluster_time_limit_minutes")
    expected = expected_minutes(config, setup)
    return expected if cap is None else min(expected, int(cap))


def resubmissions(config: Mapping[str, Any], setup: str) -> int:
    """How often a job of ``setup`` must be resubmitted after a kill at the cap to get its expected time:
    ceil(expected / cap) - 1 (0 without a cap or when the job fits)."""
    cap = config.get("cluster_time_limit_minutes")
    if cap is None:
        return 0
    return -(-expected_minutes(config, setup) // int(cap)) - 1


def job_retries(config: Mapping[str, Any], setups: Iterable[str]) -> int | None:
    """The ``retries`` of the job rule: None without a cap (the profile's ``retries`` applies), else the
    most resubmissions any of ``setups`` needs plus :data:`GENUINE_FAILURE_RETRIES`. Snakemake takes one
    integer per rule (no callable), so a job of a shorter setup may be retried more often than it needs
    after a genuine failure."""
    if config.get("cluster_time_limit_minutes") is None:
        return None
    return max((resubmissions(config, setup) for setup in setups), default=0) + GENUINE_FAILURE_RETRIES


def job_resources(config: Mapping[str, Any], setup_of: Callable[[Any], str]) -> dict[str, Callable[..., int]]:
    """Snakemake ``resources:`` of the job rule; ``setup_of(wildcards)`` names the job's setup."""
    check(config)
    return {
        "cpus_per_task": lambda wildcards, threads: threads,
        "gpu": lambda wildcards: int(config["gpus_per_job"]),
        "mem_mb": lambda wildcards: int(config["mem_mb_per_job"]),
        "runtime": lambda wildcards: runtime_minutes(config, setup_of(wildcards)),
    }
