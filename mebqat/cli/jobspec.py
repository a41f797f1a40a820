"""Command-line arguments that name a job: a config file, or setup/method/scale/... flags."""

from __future__ import annotations

import argparse
import re
from typing import Any

import yaml

from ..core.config import ConfigError, check_spec, deep_merge, load_job, read_job_file, resolve_job
from ..core.fidelity import DEFAULT_PRESET, PRESETS
from ..core.files import HugeNumber, parse_assignment, parse_yaml
from ..core.registry import METHODS
from ..core.scales import DEFAULT_SCALE, scale_names


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the job (a config file, or the flags below)")
    group.add_argument("--config", help="YAML job spec (setup, method, scale, ...) or a full config.yaml")
    group.add_argument("--spec", help="a job spec as JSON/YAML text (what the Snakemake workflow passes)")
    group.add_argument("--setup", help="e.g. cifar10_preact_resnet20 (see mebqat/resources/setups/)")
    group.add_argument(
        "--method", choices=METHODS.names(), metavar="METHOD", help=f"one of: {', '.join(METHODS.names())}"
    )
    group.add_argument("--scale", default=None, choices=scale_names(), help=f"default: {DEFAULT_SCALE}")
    group.add_argument("--fidelity", default=None, choices=PRESETS, help=f"default: {DEFAULT_PRESET}")
    group.add_argument("--seed", type=int, default=None)
    group.add_argument("--train-task", help="dedicated QAT: the bitwidth task, e.g. '(4,4)'")
    group.add_argument(
        "--switch", action="append", default=[], metavar="NAME=true|false", help="set one fidelity switch (repeatable)"
    )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        dest="overrides",
        help="override a config value, e.g. train.epochs=3 (repeatable; VALUE is YAML)",
    )


def _assignment(text: str, what: str) -> tuple[list[str], Any]:
    return parse_assignment(text, what)


def job_config(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "setup": args.setup,
        "method": args.method,
        "scale": args.scale,
        "fidelity": args.fidelity,
        "seed": args.seed,
        "train_task": args.train_task,
    }
    overrides: dict[str, Any] = {}
    for text in args.overrides:
        path, value = _assignment(text, "--set")
        nested: Any = value
        for key in reversed(path):
            nested = {key: nested}
        overrides = deep_merge(overrides, nested)
    switches = {".".join(path): value for path, value in (_assignment(text, "--switch") for text in args.switch)}
    given = {k: v for k, v in flags.items() if v is not None}

    def with_flags(spec: dict[str, Any], source: str) -> dict[str, Any]:
        """A job spec (from ``source``) with the flags, --set and --switch on top, resolved."""
        check_spec(spec, source)
        spec = {**spec, **given}
        spec["overrides"] = deep_merge(spec.get("overrides") or {}, overrides)
        spec["fidelity_switches"] = {**(spec.get("fidelity_switches") or {}), **switches}
        return resolve_job(spec, source)

    if args.spec:
        if args.config:
            raise ConfigError("give either --config or --spec, not both")
        try:
            spec = parse_yaml(args.spec)
        except HugeNumber as err:
            raise ConfigError(f"--spec: {err.where()}: give a sane number") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"--spec is not valid YAML/JSON ({' '.join(str(err).split())})") from None
        if not isinstance(spec, dict):
            raise ConfigError(f"--spec must be a mapping (a job spec), got {args.spec!r}")
        return with_flags(spec, "--spec")
    if args.config:
        if given or overrides or switches:
            spec = read_job_file(args.config)
            if "job" in spec:
                raise ConfigError("a full config.yaml cannot be combined with job flags; edit it, or pass a job spec")
            return with_flags(spec, f"config file {args.config}")
        return load_job(args.config)
    if not args.setup or not args.method:
        raise ConfigError("name the job with --config FILE, or with --setup and --method")
    spec = {"scale": DEFAULT_SCALE, **given, "overrides": overrides, "fidelity_switches": switches}
    return resolve_job(spec, "the job flags")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def device_name(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """Where and how a job runs (not part of its configuration)."""
    parser.add_argument(
        "--device", default="auto", type=device_name, help="auto (CUDA if available) | cpu | cuda | cuda:N"
    )
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's own choice)")
