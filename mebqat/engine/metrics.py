"""What both evaluation engines (supervised and few-shot) share in writing ``metrics.json`` (its keys:
docs/methods-and-engines.md, "What a job writes"): the
finished-run check, one result row per bitwidth, the record itself, and its console rendering."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.config import ConfigError, dataset_identity, find_setup, resolve_job
from ..core.hashing import config_hash
from ..core.registry import MODELS
from ..core.tasks import BitwidthTask
from ..models import build, parameter_counts
from .provenance import provenance
from .rundir import RunDir

METRICS_SCHEMA_VERSION = 2


def finished_run(out: str | Path) -> tuple[RunDir, dict[str, Any], dict[str, Any]]:
    """(run, resolved config, train summary) of a run whose training finished with this configuration."""
    run = RunDir(out)
    config = run.read_config()
    if not run.summary.exists():
        raise ConfigError(f"{run.root}: training has not finished (no {run.summary.name}); run `mebqat train` first")
    summary = run.read_summary()
    if summary.get("config_hash") != config_hash(config):
        raise ConfigError(f"{run.root}: {run.summary.name} belongs to another configuration")
    return run, config, summary


def bits_value(value: int | None) -> int | str:
    return "FP" if value is None else value


def result_row(task: BitwidthTask, accuracy: float, ci: float, n: int, **extra: Any) -> dict[str, Any]:
    """One evaluated bitwidth: accuracy and 95% CI half-width in %, ``n`` images or tasks."""
    return {
        "bits_w": bits_value(task.w),
        "bits_a": bits_value(task.a),
        "accuracy": accuracy,
        "ci95": None if math.isnan(ci) else ci,
        "n": n,
        **extra,
    }


def metrics_record(
    config: Mapping[str, Any],
    summary: Mapping[str, Any],
    *,
    title: str,
    results: list[dict[str, Any]],
    not_evaluated: list[dict[str, Any]],
    checkpoint: str,
    state: Mapping[str, Any],
    checkpoint_path: Path,
    eval_time: float,
    device: torch.device,
    accuracy_definition: str,
    eval_engine: str,
    identity_extra: Mapping[str, Any] | None = None,
    data_fingerprint: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metrics.json of one evaluated run. ``state``: the loaded
    checkpoint (its epoch and selection score); ``data_fingerprint``: the data files the run read, by content
    (its provenance); ``extra``: engine-specific sections (e.g. the test tasks)."""
    job = config["job"]
    setup = find_setup(job["setup"])[1]
    return {
        "schema_version": METRICS_SCHEMA_VERSION,
        "identity": {
            **{k: job[k] for k in ("table", "setup", "method", "scale", "fidelity", "seed")},
            "method_title": title,
            "train_tasks": summary["trained_tasks"],
            **dataset_identity(config),
            "paper_dataset": setup["paper"]["dataset"],
            "paper_model": setup["paper"]["model"],
            "model": config["model"]["name"],
            "quantizer": config["model"]["scheme"],
            **(identity_extra or {}),
        },
        "fidelity_switches": config["fidelity_switches"],
        "results": results,
        "not_evaluated": not_evaluated,
        **(extra or {}),
        "selection": {
            "checkpoint": checkpoint,
            "epoch": state["epoch"],
            "split": summary["select_split"],
            "accuracy": state.get("score"),
        },
        "accuracy_definition": accuracy_definition,
        "costs": {
            "forward_passes_per_update": summary["forward_passes_per_update"],
            "backward_passes_per_update": summary["backward_passes_per_update"],
            "updates": summary["updates"],
            "stored_parameters": summary["stored_parameters"],
            "stored_buffers": summary["stored_buffers"],
            "checkpoint_bytes": checkpoint_path.stat().st_size,
            "train_wall_time_s": summary["train_wall_time_s"],
            "eval_wall_time_s": eval_time,
        },
        "provenance": {
            **provenance(config, device),
            **({"data_fingerprint": dict(data_fingerprint)} if data_fingerprint is not None else {}),
            "engines": {
                "train": summary.get("engine"),
                "evaluate": eval_engine,
                "memory_format": summary.get("memory_format"),
            },
        },
    }


def format_results(metrics: Mapping[str, Any]) -> str:
    lines = [f"{'bits':>10}  accuracy"]
    for r in metrics["results"]:
        ci = f" ± {r['ci95']:.2f}" if r["ci95"] is not None else ""
        lines.append(f"{'(' + str(r['bits_w']) + ',' + str(r['bits_a']) + ')':>10}  {r['accuracy']:.2f}%{ci}")
    for r in metrics["not_evaluated"]:
        lines.append(f"{'(' + str(r['bits_w']) + ',' + str(r['bits_a']) + ')':>10}  –  ({r['reason']})")
    return "\n".join(lines)


def architecture_counts(config: Mapping[str, Any], model: nn.Module) -> dict[str, Any]:
    """Parameters and BatchNorm parameters of the trained network and of its architecture at the paper's
    width (Table 3's M and r: the tables read them from here, so they need no torch)."""
    job = config["job"]
    paper = resolve_job(
        {key: job[key] for key in ("setup", "method", "fidelity", "seed") if job.get(key) is not None}
        | {"scale": "paper", **({"train_task": job["train_task"]} if job.get("train_task") else {})}
    )
    options = {key: value for key, value in paper["model"]["options"].items() if value is not None}
    options.update(MODELS.get(paper["model"]["name"]).data_arguments(paper["data"]))
    plain = parameter_counts(build(paper["model"]["name"], scheme=paper["model"]["scheme"], **options))
    trained = parameter_counts(model)
    return {
        "params": trained["params"],
        "bn_params": trained["bn_params"],
        "paper_width": {"params": plain["params"], "bn_params": plain["bn_params"]},
    }
