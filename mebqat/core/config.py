"""Job configurations: a short job spec (setup, method, scale, fidelity, seed, …) resolves into a full,
schema-validated configuration from the setup presets in ``mebqat/resources/setups``.

Resolution merges, in order: the table's ``defaults``, the setup's ``base``, the setup's
``per_method.<method>``, the table's ``scales.<scale>``, the setup's ``scales.<scale>``, and the job's own
``overrides``; then the method's own option defaults fill ``method``, and the fidelity preset gives every
switch. An unknown key or a wrong type anywhere is an error that names it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .fidelity import DEFAULT_PRESET, resolve_switches
from .files import InputError, read_yaml
from .registry import DATASETS, METHODS, MethodInfo, data_title, ensure_loaded
from .scales import SCALES
from .schemas import first_violation
from .tasks import BitwidthTask, bitwidth_candidates, validate_task

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
SPEC_KEYS = {"table", "setup", "method", "scale", "fidelity", "seed", "train_task", "fidelity_switches", "overrides"}


class ConfigError(InputError):
    """A configuration that cannot be run, with the reason."""


@functools.cache
def load_table_setups(table: str) -> dict[str, Any]:
    path = RESOURCES / "setups" / f"{table}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown table {table!r}; setup files: {', '.join(available_tables())}")
    return yaml.safe_load(path.read_text())


def available_tables() -> list[str]:
    return sorted(p.stem for p in (RESOURCES / "setups").glob("*.yaml"))


def find_setup(name: str) -> tuple[str, dict[str, Any]]:
    """(table, setup definition) of a setup name, searched across every table."""
    for table in available_tables():
        setups = load_table_setups(table)["setups"]
        if name in setups:
            return table, setups[name]
    known = [s for t in available_tables() for s in load_table_setups(t)["setups"]]
    raise ConfigError(f"unknown setup {name!r}; available: {', '.join(known)}")


def dataset_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """How every output names a job's data: the dataset, whether it is a stand-in, and the paper's dataset
    it stands for (the setup's, e.g. SVHN, not the stand-in's general description)."""
    ensure_loaded()
    info = DATASETS.get(config["data"]["name"])
    paper = find_setup(config["job"]["setup"])[1]["paper"]["dataset"]
    return {"dataset": info.name, "is_standin": info.is_standin, "stands_for": paper if info.is_standin else None}


def dataset_title(identity: Mapping[str, Any]) -> str:
    """The name every output gives the data of :func:`dataset_identity`: stand-ins say what they stand for."""
    return data_title(identity["dataset"], identity["is_standin"], identity["stands_for"])


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate_schema(config: Mapping[str, Any], schema: str) -> None:
    violation = first_violation(config, schema)
    if violation:
        raise ConfigError(f"invalid configuration {violation}")


def _method_options(info: MethodInfo, options: Mapping[str, Any] | None) -> dict[str, Any]:
    defaults = dict(info.options)
    unknown = set(options or {}) - set(defaults)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {sorted(unknown)} for method {info.name!r}; its options: {sorted(defaults) or 'none'}"
        )
    return {**defaults, **(options or {})}


def job_schema(info: MethodInfo) -> str:
    """The schema of a resolved job configuration of this method's problem kind."""
    return f"{info.problem}_job"


def method_allowed(info: MethodInfo, table: str, setup_name: str, setup: Mapping[str, Any]) -> None:
    """A setup runs the paper's methods it lists, and any other registered method made for its table."""
    if info.name not in setup["methods"] and table not in info.tables:
        raise ConfigError(
            f"method {info.name!r} is not part of setup {setup_name!r} (its methods: "
            f"{', '.join(setup['methods'])}; {info.name} runs on {', '.join(info.tables)})"
        )


SPEC_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "table": ((str,), "a table name, e.g. table2"),
    "setup": ((str,), "a setup name, e.g. svhn_cnn8"),
    "method": ((str,), "a method name, e.g. mebqat"),
    "scale": ((str,), "a scale name, e.g. smoke"),
    "fidelity": ((str,), "a fidelity preset name"),
    "seed": ((int,), "a non-negative integer"),
    "train_task": ((str, type(None)), "a bitwidth task, e.g. '(4,4)'"),
    "fidelity_switches": ((Mapping, type(None)), "a mapping of switch names to true/false"),
    "overrides": ((Mapping, type(None)), "a mapping of config sections, e.g. {train: {epochs: 3}}"),
}
"""What each job spec key holds (None for the last three: not given)."""


def _kind(value: Any) -> str:
    kinds = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer"}
    return kinds.get(type(value), "null" if value is None else type(value).__name__)


def check_spec(spec: Mapping[str, Any], source: str = "job spec") -> None:
    """Every key of a job spec known and of its type, each problem one error naming ``source`` (``--spec``,
    the config file) and the key."""
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        shown = sorted(map(repr, unknown))
        raise ConfigError(f"{source}: unknown job key(s) [{', '.join(shown)}]; a job spec has {sorted(SPEC_KEYS)}")
    for key, value in spec.items():
        types, what = SPEC_TYPES[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            text = repr(value)
            text = text if len(text) <= 60 else f"{text[:60]}…"
            raise ConfigError(f"{source}: {key} must be {what}, got {_kind(value)} ({text})")


def resolve_job(spec: Mapping[str, Any], source: str = "job spec") -> dict[str, Any]:
    """Expand a job spec into a full configuration and validate it (``source`` names it in errors)."""
    check_spec(spec, source)
    for key in ("setup", "method", "scale"):
        if key not in spec:
            raise ConfigError(f"{source}: a job spec needs {key!r}")
    table, setup = find_setup(spec["setup"])
    if spec.get("table", table) != table:
        raise ConfigError(f"setup {spec['setup']!r} belongs to {table}, not {spec['table']}")
    method = spec["method"]
    entry = _method_info(method)
    method_allowed(entry, table, spec["setup"], setup)
    scale = spec["scale"]
    if scale not in SCALES:
        raise ConfigError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    presets = load_table_setups(table)
    preset = presets.get("defaults", {})
    for layer in (
        setup.get("base"),
        setup.get("per_method", {}).get(method),
        presets.get("scales", {}).get(scale),
        setup.get("scales", {}).get(scale),
    ):
        preset = deep_merge(preset, layer)
    merged = follow_epoch_budget(preset, deep_merge(preset, spec.get("overrides")), spec.get("overrides") or {})
    fidelity = spec.get("fidelity", DEFAULT_PRESET)
    train_task = spec.get("train_task")
    family = merged.get("model", {}).get("scheme")
    if entry.per_bitwidth:
        if train_task is None:
            raise ConfigError(f"method {method!r} trains one model per bitwidth: give train_task, e.g. '(4,4)'")
        train_task = str(validate_task(train_task, family))
    elif train_task is not None:
        raise ConfigError(f"method {method!r} does not take a train_task")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    config = {
        "job": {
            "table": table,
            "setup": spec["setup"],
            "method": method,
            "scale": scale,
            "fidelity": fidelity,
            "seed": seed,
            "train_task": train_task,
        },
        "fidelity_switches": resolve_switches(fidelity, spec.get("fidelity_switches"), table),
        **{k: v for k, v in merged.items() if k != "method"},
        "method": _method_options(entry, merged.get("method")),
    }
    validate_config(config)
    return config


BUDGET_RELATIVE = {"multistep": "milestones", "cosine": "t_max"}
"""Schedule keys counted in epochs of the whole budget (torch's MultiStepLR milestones, CosineAnnealingLR's
T_max): they move with ``train.epochs``. ``step``'s ``step_size`` is a period and stays as it is."""


def follow_epoch_budget(
    preset: Mapping[str, Any], merged: dict[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """An override of ``train.epochs`` that leaves the schedule alone scales the preset's budget-relative
    schedule keys with it (milestones [3] of 4 epochs become [9] of 12), as they were written for the
    preset's budget; the scaled keys are in the resolved config. A schedule the override gives itself is
    the user's: it is kept, and refused when it cannot act within the epochs (a milestone past the last epoch)."""
    train = overrides.get("train")
    train_override: Mapping[str, Any] = train if isinstance(train, Mapping) else {}
    schedule = merged.get("train", {}).get("schedule")
    epochs = merged.get("train", {}).get("epochs")
    if not isinstance(schedule, Mapping) or not isinstance(epochs, int) or isinstance(epochs, bool):
        return merged  # the schema names what is wrong
    key = BUDGET_RELATIVE.get(schedule.get("name", ""))  # no name: "" is no key, as None was
    own_schedule = isinstance(train_override.get("schedule"), Mapping) and key in train_override["schedule"]
    if key is None or key not in schedule:
        return merged
    if own_schedule:
        values = schedule[key] if isinstance(schedule[key], list) else [schedule[key]]
        late = [m for m in values if isinstance(m, int) and m >= epochs]
        if key == "milestones" and late:
            raise ConfigError(
                f"train.schedule.milestones {values}: {late} would drop the rate only after the last "
                f"of train.epochs {epochs}; give milestones below {epochs}, or leave them out to "
                f"scale the preset's with the epochs"
            )
        return merged
    old_epochs = preset.get("train", {}).get("epochs")
    if "epochs" not in train_override or not isinstance(old_epochs, int) or old_epochs == epochs:
        return merged

    def scaled(value: Any) -> Any:
        return max(1, round(value * epochs / old_epochs)) if isinstance(value, int) else value

    old = schedule[key]
    try:
        new = [scaled(m) for m in old] if isinstance(old, list) else scaled(old)
    except OverflowError:  # epochs beyond any sane bound: the schema names them
        return merged
    merged["train"]["schedule"] = {**schedule, key: new}
    return merged


def _method_info(name: Any) -> MethodInfo:
    try:
        return METHODS.get(name)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def validate_config(config: Mapping[str, Any]) -> None:
    """Schema, method options, bitwidth tasks: everything that can be checked before a job starts."""
    entry = _method_info(config.get("job", {}).get("method", ""))
    validate_schema(config, job_schema(entry))
    _method_options(entry, config["method"])
    expected = resolve_switches(config["job"]["fidelity"], config["fidelity_switches"], config["job"]["table"])
    if set(expected) != set(config["fidelity_switches"]):
        missing = sorted(set(expected) - set(config["fidelity_switches"]))
        raise ConfigError(f"fidelity_switches must list every switch of {config['job']['table']}; missing {missing}")
    check_task_list(config["evaluate"]["tasks"], config["model"]["scheme"], "evaluate.tasks")


def check_task_list(tasks: list[Any], family: str, where: str) -> list[BitwidthTask]:
    """Each task valid in the family, none twice, so no more than the family has: checked before any work
    (a repeated task would train and evaluate, then be refused as results that come from two places)."""
    candidates = bitwidth_candidates(family)
    if len(tasks) > len(candidates):
        raise ConfigError(
            f"{where} lists {len(tasks)} tasks, more than the {len(candidates)} valid {family} bitwidth pairs: "
            f"list each bitwidth once"
        )
    parsed: dict[BitwidthTask, Any] = {}
    for task in tasks:
        try:
            valid = validate_task(task, family)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        if valid in parsed:
            raise ConfigError(f"{where} names {valid} twice ({parsed[valid]!r} and {task!r}): list each bitwidth once")
        parsed[valid] = task
    return list(parsed)


def read_job_file(path: str | Path) -> dict[str, Any]:
    """The mapping a job file holds (a short job spec or a full configuration), unresolved."""
    return read_yaml(path, "config file")


def load_job(path: str | Path) -> dict[str, Any]:
    """A job file holds either a short job spec or a full configuration (e.g. a run's config.yaml)."""
    content = read_job_file(path)
    if "job" in content:
        validate_config(content)
        return content
    return resolve_job(content, f"config file {path}")


def parse_task_list(tasks: list[str]) -> list[BitwidthTask]:
    return [BitwidthTask.parse(t) for t in tasks]


def evaluation_tasks(config: Mapping[str, Any], tasks: list[str] | None) -> list[BitwidthTask]:
    """The bitwidths to evaluate: the caller's list (each checked against the quantizer family's
    candidates), else the config's. A dedicated job (trained at one fixed task) evaluates only at that task
    when ``evaluate.own_task_only`` is set: the tables use only that row, and skipping the others is what
    makes the CPU scales affordable."""
    if tasks is not None:
        return check_task_list(tasks, config["model"]["scheme"], "--tasks")
    own = config["job"].get("train_task")
    if config["evaluate"].get("own_task_only") and own is not None:
        return parse_task_list([own])
    return parse_task_list(config["evaluate"]["tasks"])
