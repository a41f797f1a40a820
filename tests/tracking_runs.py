"""Synthetic finished run directories for the tracking tests, and checks of what a store holds.

A run directory here has the files `mebqat train` + `mebqat evaluate` write (config.yaml with a real
resolved config, history.jsonl, train_summary.json, train.log, metrics.json valid against its schema,
episode_accuracies.npz for few-shot jobs) with made-up but deterministic numbers.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from mebqat.core.config import resolve_job
from mebqat.core.hashing import config_hash
from mebqat.core.schemas import validator

METRICS_SCHEMA = validator("metrics").schema
HISTORY_FIELDS = {
    "train_loss": "curves/train_loss",
    "select_accuracy": "curves/select_accuracy",
    "lr": "curves/lr",
    "elapsed_s": "elapsed_s",
}
"""history.jsonl field → its metric (the three curves under curves/, drawn first on the run page)."""
HEADLINES = {"(FP,FP)": "test/acc_FP", "(2,2)": "test/acc_2bit"}


def _bits(value: str) -> int | str:
    return value if value == "FP" else int(value)


def _tasks(config: dict[str, Any]) -> list[tuple[int | str, int | str]]:
    pairs = [task.strip("()").split(",") for task in config["evaluate"]["tasks"]]
    return [(_bits(w), _bits(a)) for w, a in pairs]


def write_run(
    root: Path,
    setup: str = "svhn_cnn8",
    method: str = "mebqat",
    seed: int = 0,
    epochs: int = 4,
    train_task: str | None = None,
    overrides: dict[str, Any] | None = None,
    variant: int = 0,
) -> Path:
    """Write a finished job into ``root``; ``variant`` changes the numbers, not the config (a re-run)."""
    spec = {
        "setup": setup,
        "method": method,
        "scale": "smoke",
        "seed": seed,
        "train_task": train_task,
        "overrides": overrides or {},
    }
    config = resolve_job(spec)
    key = config_hash(config)
    salt = zlib.crc32(f"{key}/{variant}".encode()) % 1000 / 1000  # numbers differ between jobs and re-runs
    job = config["job"]
    fewshot = job["table"] in ("table4", "table5")
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    history = [
        {
            "epoch": e,
            "train_loss": 2.5 / e + salt,
            "select_accuracy": 10.0 * e + salt,
            "select_split": "test",
            "lr": 0.1 / e,
            "best": e % 2 == 1,
            "elapsed_s": 1.5 * e + salt,
        }
        for e in range(1, epochs + 1)
    ]
    (root / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    summary = {
        "epochs": epochs,
        "updates": 2 * epochs,
        "forward_passes_per_update": 7.0,
        "backward_passes_per_update": 4.0,
        "forward_passes": 14 * epochs,
        "backward_passes": 8 * epochs,
        "trained_tasks": ["(2,2)", "(FP,FP)"],
        "best_epoch": epochs,
        "best_score": 10.0 * epochs + salt,
        "select_split": "test",
        "train_wall_time_s": 1.5 * epochs + salt,
        "config_hash": key,
        "stored_parameters": 1234,
        "stored_buffers": 0,
    }
    (root / "train_summary.json").write_text(json.dumps(summary, indent=2))
    (root / "train.log").write_text(f"{job['setup']} / {job['method']} config {key}\ntraining done\n")
    tasks = _tasks(config)
    results = [
        {"bits_w": w, "bits_a": a, "accuracy": 50.0 + i + salt, "ci95": 1.0 + salt, "n": 6}
        for i, (w, a) in enumerate(tasks)
    ]
    identity = {
        "table": job["table"],
        "setup": job["setup"],
        "method": job["method"],
        "method_title": method.upper(),
        "scale": job["scale"],
        "fidelity": job["fidelity"],
        "seed": job["seed"],
        "train_tasks": summary["trained_tasks"],
        "dataset": config["data"]["name"],
        "is_standin": True,
        "stands_for": "synthetic",
        "paper_dataset": "synthetic",
        "paper_model": "synthetic",
        "model": config["model"]["name"],
        "quantizer": config["model"]["scheme"],
    }
    metrics: dict[str, Any] = {
        "schema_version": 2,
        "identity": identity,
        "fidelity_switches": config["fidelity_switches"],
        "results": results,
        "not_evaluated": [],
        "selection": {"checkpoint": "best", "epoch": epochs, "split": "test", "accuracy": 10.0 * epochs + salt},
        "costs": {
            "forward_passes_per_update": 7.0,
            "backward_passes_per_update": 4.0,
            "updates": 2 * epochs,
            "stored_parameters": 1234,
            "stored_buffers": 0,
            "checkpoint_bytes": 5678,
            "train_wall_time_s": 1.5 * epochs + salt,
            "eval_wall_time_s": 0.5 + salt,
        },
        "provenance": {
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
            "git_dirty": False,
            "packages": {"torch": "2.14.1", "mlflow": "3.17.2"},
            "python": "3.11.7",
            "device": "cpu",
            "hostname": "test",
            "config_hash": key,
            "created": "2026-11-22T00:00:00+00:00",
        },
    }
    if fewshot:
        identity.update(ways=config["data"]["ways"], shots=config["data"]["shots"])
        metrics["test_tasks"] = {
            "count": 6,
            "fingerprint": "f" * 64,
            "queries": 2,
            "per_episode_file": "episode_accuracies.npz",
        }
        np.savez(root / "episode_accuracies.npz", accuracies=np.full((len(tasks), 6), salt))
    jsonschema.validate(metrics, METRICS_SCHEMA)
    (root / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return root


def leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted paths and values of a nested config, written independently of the code under test."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def find_runs(client: Any, run_dir: Path) -> list[Any]:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    experiment = client.get_experiment_by_name(config["job"]["table"])
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mebqat.run_key` = '{config_hash(config)}'"
    )


def assert_run_matches(client: Any, run_dir: Path) -> Any:
    """The one run of ``run_dir`` holds every param, final metric and history point of its files."""
    runs = find_runs(client, run_dir)
    assert len(runs) == 1, f"{run_dir}: {len(runs)} runs"
    run = runs[0]
    assert run.info.status == "FINISHED"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = dict(leaves(config))
    if "data_fingerprint" in metrics["provenance"]:  # the data the job read, by content
        expected["data_fingerprint"] = metrics["provenance"]["data_fingerprint"]["digest"]
    assert set(run.data.params) == set(expected)
    for key, value in expected.items():
        logged = run.data.params[key]
        assert (logged if isinstance(value, str) else json.loads(logged)) == value, key
    for result in metrics["results"]:
        task = f"({result['bits_w']},{result['bits_a']})"
        if task in HEADLINES:
            assert run.data.metrics[HEADLINES[task]] == round(result["accuracy"], 2), task
        if task == config["job"]["train_task"]:
            assert run.data.metrics["test/acc_trained_task"] == round(result["accuracy"], 2)
    assert ("test/acc_trained_task" in run.data.metrics) == (config["job"]["train_task"] is not None)
    # every bitwidth's accuracy, interval and n are the accuracy.csv artifact, not one metric each
    assert not [k for k in run.data.metrics if k.startswith(("acc_w", "ci95_w", "n_w"))]
    for key, value in metrics["costs"].items():
        assert run.data.metrics[key] == value, key
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    for field, name in HISTORY_FIELDS.items():
        points = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
        assert points == [(r["epoch"], r[field]) for r in history], field
    identity = metrics["identity"]
    tags = run.data.tags
    assert tags["mebqat.run_key"] == metrics["provenance"]["config_hash"]
    assert (tags["mebqat.table"], tags["mebqat.setup"], tags["mebqat.method"], tags["mebqat.seed"]) == (
        identity["table"],
        identity["setup"],
        identity["method"],
        str(identity["seed"]),
    )
    assert tags["mebqat.is_standin"] == "true" and tags["mebqat.git_commit"] == metrics["provenance"]["git_commit"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {p.name for p in run_dir.iterdir()} <= artifacts
    return run
