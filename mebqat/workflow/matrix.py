"""Expand the table matrix (config/tables.yaml) and the workflow config into training jobs.

A job is identified by a path-like id, ``<scale>-<fidelity>/<table>/<setup>/<method>[-<task>]/seed<k>``
(e.g. ``mini-official/table2/svhn_cnn8/qat-w4a4/seed0``), and carries the job spec that
``mebqat train --spec`` resolves (setup, method, scale, fidelity, seed, train_task, fidelity switches,
overrides: the workflow's ``job_overrides`` under its ``download`` and ``engine``) plus the hash of its
resolved configuration — so a change of the config or of a setup preset reruns exactly the jobs whose
resolved configuration changed.

A method whose registry entry says ``per_bitwidth`` trains one job per evaluated bitwidth of its setup: every
one, or (with ``fp_row_from``, whose plain method's model fills the (FP,FP) row) every one but (FP,FP).

The workflow key ``setups`` (null: every setup of the matrix) restricts the jobs to the named setups; a job's
id, spec and hash do not depend on it, so a subset's jobs are the same jobs as the full matrix's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.config import ConfigError, available_tables, deep_merge, find_setup, load_table_setups, resolve_job
from ..core.fidelity import SWITCHES
from ..core.files import read_yaml
from ..core.hashing import config_hash
from ..core.registry import METHODS
from ..core.tasks import FP_TASK, BitwidthTask


@dataclass(frozen=True)
class Job:
    id: str
    table: str
    spec: dict[str, Any] = field(hash=False)
    config_hash: str = ""


def load_matrix(path: str) -> dict[str, Any]:
    matrix = read_yaml(path, "table matrix")
    for table, entry in matrix.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("setups"), list):
            raise ConfigError(f"{path}: {table} must be a mapping with a list of setups, e.g. {{setups: [svhn_cnn8]}}")
        if "one_model_per_bitwidth" in entry:
            raise ConfigError(
                f"{path}: {table}.one_model_per_bitwidth is not read any more: which methods train "
                f"one model per bitwidth comes from the method registry (per_bitwidth, fp_row_from: "
                f"docs/methods-and-engines.md); delete the key"
            )
        unknown = set(entry) - {"setups"}
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)} under {table}")
        for setup in entry.get("setups", []):
            owner, _ = find_setup(setup)
            if owner != table:
                raise ConfigError(f"{path}: setup {setup!r} belongs to {owner}, not {table}")
    return matrix


def _resolve(spec: Mapping[str, Any], workflow: Mapping[str, Any]) -> dict[str, Any]:
    """The job's resolved configuration; an invalid one named as the workflow's job_overrides when it has any."""
    try:
        return resolve_job(spec)
    except ConfigError as err:
        if not workflow.get("job_overrides"):
            raise
        raise ConfigError(
            f"config key job_overrides makes job {spec['setup']}/{spec['method']} {err}; fix or remove the override"
        ) from None


def select_setups(
    matrix: Mapping[str, Any], setups: list[str] | None, tables: Collection[str], asked: Collection[str]
) -> dict[str, list[str]]:
    """{table: its setups} of the ``tables`` whose jobs run, restricted to ``setups`` (None: all of the
    matrix's); ``asked`` is the workflow's ``tables`` (table3 asks for table2's jobs). A name that is no setup,
    is not in the matrix or belongs to no table whose jobs run, or a table left without setups, is a one-line
    error naming the key ``setups``."""
    chosen = {table: list(matrix[table]["setups"]) for table in sorted(tables)}
    if setups is None:
        return chosen
    known = [s for t in available_tables() for s in load_table_setups(t)["setups"]]
    for name in setups:
        if name not in known:
            raise ConfigError(f"setups: unknown setup {name!r}; valid names: {', '.join(known)}")
        owner = next((t for t, entry in matrix.items() if name in entry["setups"]), None)
        if owner is None:
            raise ConfigError(f"setups: {name!r} is not in the table matrix (the file of the key matrix); drop it")
        if owner not in chosen:
            raise ConfigError(
                f"setups: {name!r} is a {owner} setup, but tables does not build {owner}; add {owner} to tables "
                f"or drop {name!r}"
            )
    for table, names in chosen.items():
        chosen[table] = [s for s in names if s in setups]
        if not chosen[table]:
            builds = table if table in asked else f"table3, which is computed from {table}'s jobs"
            raise ConfigError(
                f"setups: none of {table}'s setups ({', '.join(names)}) is selected, but tables builds {builds}; "
                f"add one of them to setups or remove {builds.split(',')[0]} from tables"
            )
    return chosen


def _dedicated_tasks(
    config: Mapping[str, Any], fp_row_elsewhere: bool, restrict: list[str] | None
) -> list[BitwidthTask]:
    tasks = [BitwidthTask.parse(t) for t in config["evaluate"]["tasks"]]
    if fp_row_elsewhere:
        tasks = [t for t in tasks if t != FP_TASK]
    if restrict is not None:
        wanted = {BitwidthTask.parse(t) for t in restrict}
        tasks = [t for t in tasks if t in wanted]
    return tasks


def expand_jobs(workflow: Mapping[str, Any], matrix: Mapping[str, Any]) -> dict[str, Job]:
    """Every training job of the tables named in ``workflow["tables"]`` (table3 needs table2's), of the setups
    named in ``workflow["setups"]`` (absent or null: every setup of the matrix)."""
    scale, fidelity = workflow["scale"], workflow["fidelity"]
    wanted = set(workflow["tables"]) | ({"table2"} if "table3" in workflow["tables"] else set())
    restrict_all = workflow.get("dedicated_tasks")
    # the data root is not part of a job (moving the data must not rerun it): the workflow passes it in
    # the environment ($MEBQAT_DATA)
    overrides = {"data": {"download": workflow["download"]}, "train": {"engine": workflow["engine"]}}
    if workflow.get("job_overrides"):  # the workflow's own keys (download, engine) win over the same keys here
        overrides = deep_merge(workflow["job_overrides"], overrides)
    switches = dict(workflow.get("fidelity_switches") or {})
    unknown = sorted(set(switches) - set(SWITCHES))
    if unknown:
        raise ConfigError(f"unknown fidelity switch(es) {unknown}; known: {', '.join(SWITCHES)}")
    built = wanted - {"table3"}
    for table in sorted(built):
        if table not in matrix:
            raise ConfigError(f"table {table!r} is not in the table matrix ({', '.join(matrix)})")
    jobs: dict[str, Job] = {}
    for table, setups in select_setups(matrix, workflow.get("setups"), built, workflow["tables"]).items():
        restrict = restrict_all.get(table) if isinstance(restrict_all, Mapping) else restrict_all
        for setup in setups:
            for method in find_setup(setup)[1]["methods"]:
                # a workflow-wide switch reaches the jobs of the tables it applies to
                applicable = {k: v for k, v in switches.items() if table in SWITCHES[k].tables}
                base = {
                    "setup": setup,
                    "method": method,
                    "scale": scale,
                    "fidelity": fidelity,
                    "fidelity_switches": applicable,
                    "overrides": overrides,
                }
                info = METHODS.get(method)
                variants: list[tuple[str | None, str | None]]
                if info.per_bitwidth:
                    fp_row_elsewhere = info.fp_row_from is not None
                    probe = _resolve(
                        {**base, "train_task": "(8,8)" if fp_row_elsewhere else str(FP_TASK), "seed": 0}, workflow
                    )
                    variants = [(t.label(), str(t)) for t in _dedicated_tasks(probe, fp_row_elsewhere, restrict)]
                else:
                    variants = [(None, None)]
                for label, task in variants:
                    for seed in workflow["seeds"]:
                        spec = {**base, "seed": seed, **({"train_task": task} if task else {})}
                        name = method if label is None else f"{method}-{label}"
                        job_id = f"{scale}-{fidelity}/{table}/{setup}/{name}/seed{seed}"
                        jobs[job_id] = Job(job_id, table, spec, config_hash(_resolve(spec, workflow)))
    return jobs
