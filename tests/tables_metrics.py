"""Hand-made metrics.json files for the table tests: the identity comes from the setup presets and the
method registry, the numbers from the test; every file is checked against the metrics schema."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import jsonschema
import numpy as np

from mebqat.core.accuracy import PER_BATCH, batch_means
from mebqat.core.schemas import validator
from mebqat.methods import get_method
from mebqat.quant import bitwidth_candidates
from mebqat.tables.layout import find_layout

SCHEMA = validator("metrics").schema
TABLE_OF = {"cifar10_mobilenetv2": "table2", "cifar10_preact_resnet20": "table2", "svhn_cnn8": "table2"}
REAL_DATA = {"CIFAR-10": "cifar10", "SVHN": "svhn", "Omniglot": "omniglot", "MiniImageNet": "miniimagenet"}
STANDIN = {"CIFAR-10": "digits", "SVHN": "digits", "Omniglot": "glyphs28", "MiniImageNet": "glyphs84"}
DEFAULT_COSTS = {
    "forward_passes_per_update": 1.0,
    "backward_passes_per_update": 1.0,
    "updates": 4,
    "stored_parameters": 1000,
    "stored_buffers": 0,
    "checkpoint_bytes": 4096,
    "train_wall_time_s": 1.0,
    "eval_wall_time_s": 1.0,
}


def table_of(setup: str) -> str:
    if setup in TABLE_OF:
        return TABLE_OF[setup]
    return "table4" if setup.startswith("maml_") else "table5"


def _bits(label: str) -> int | str:
    return "FP" if label == "FP" else int(label)


def _train_tasks(method: str, quantizer: str, train_task: str | None, trained: list[str] | None) -> list[str]:
    if trained is not None:
        return trained
    if train_task is not None:
        return [train_task]
    if method in ("fomaml", "pn"):
        return ["(FP,FP)"]
    return [str(t) for t in bitwidth_candidates(quantizer)]


def write_metrics(
    root: Path,
    setup: str,
    method: str,
    results: Mapping[tuple[str, str], float | tuple[float, float | None]],
    *,
    seed: int = 0,
    scale: str = "smoke",
    fidelity: str = "official",
    standin: bool = True,
    train_task: str | None = None,
    trained: list[str] | None = None,
    costs: Mapping[str, float] | None = None,
    name: str | None = None,
    architecture: tuple[int, int] | None = None,
    items: Mapping[tuple[str, str], np.ndarray] | None = None,
    batch_sizes: Sequence[int] | None = None,
) -> Path:
    """Write ``<root>/<name>/metrics.json``; ``results`` maps ("4", "4") to an accuracy or (accuracy, ci95);
    ``architecture`` is the (params, BatchNorm params) of the paper-width network the job measured; ``items``
    the per-item outcomes per row (0/1 per test image for Table 2, accuracy per test episode for Tables 4/5),
    written as the job's image_correct.npz / episode_accuracies.npz (the row's accuracy is then their mean);
    ``batch_sizes`` splits Table 2's test images into batches, and the accuracy is then the official one, the
    mean of the batches' accuracies."""
    table = table_of(setup)
    layout = find_layout(table, setup)
    identity = {
        "table": table,
        "setup": setup,
        "method": method,
        "method_title": get_method(method).title,
        "scale": scale,
        "fidelity": fidelity,
        "seed": seed,
        "train_tasks": _train_tasks(method, layout.quantizer, train_task, trained),
        "dataset": (STANDIN if standin else REAL_DATA)[layout.paper_dataset],
        "is_standin": standin,
        "stands_for": layout.paper_dataset if standin else None,
        "paper_dataset": layout.paper_dataset,
        "paper_model": layout.paper_model,
        "model": layout.model,
        "quantizer": layout.quantizer,
    }
    if layout.ways is not None:
        identity.update(ways=layout.ways, shots=layout.shots)
    if items is not None and batch_sizes is not None:
        results = {
            row: float(100 * np.mean(batch_means(np.asarray(values, dtype=float), np.array(batch_sizes))))
            for row, values in items.items()
        }
    elif items is not None:
        results = {row: float(100 * np.mean(values)) for row, values in items.items()}
    rows = []
    for (w, a), value in results.items():
        accuracy, ci = value if isinstance(value, tuple) else (value, 0.5)
        rows.append({"bits_w": _bits(w), "bits_a": _bits(a), "accuracy": accuracy, "ci95": ci, "n": 600})
    metrics = {
        "schema_version": 2,
        "identity": identity,
        "fidelity_switches": {"per_task_teacher": fidelity == "official"},
        "results": rows,
        "not_evaluated": [],
        "costs": {**DEFAULT_COSTS, **(costs or {})},
        "provenance": {
            "git_commit": "0" * 40,
            "git_dirty": False,
            "packages": {},
            "device": "cpu",
            "config_hash": "test",
        },
    }
    if batch_sizes is not None:
        metrics["accuracy_definition"] = PER_BATCH
    if architecture is not None:
        metrics["architecture"] = {
            "params": architecture[0],
            "bn_params": architecture[1],
            "paper_width": {"params": architecture[0], "bn_params": architecture[1]},
        }
    jsonschema.validate(metrics, SCHEMA)
    tag = name or f"{setup}-{method}-{train_task or 'all'}-s{seed}-{scale}-{fidelity}"
    path = root / tag.replace("(", "").replace(")", "").replace(",", "_") / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=1))
    if items is not None:
        bits = np.array([f"({w},{a})" for w, a in items])
        values = np.stack([np.asarray(v) for v in items.values()])
        if table == "table2":
            np.savez(
                path.parent / "image_correct.npz",
                correct=values.astype(np.uint8),
                bits=bits,
                image_ids=np.arange(values.shape[1]),
                batch_sizes=np.array(batch_sizes if batch_sizes is not None else [values.shape[1]]),
            )
        else:
            np.savez(path.parent / "episode_accuracies.npz", accuracies=values, bits=bits, fingerprint=np.array("test"))
    return path


def rows_of(setup: str) -> list[tuple[str, str]]:
    return list(find_layout(table_of(setup), setup).rows)


def ramp(setup: str, start: float, step: float = 1.0) -> dict[tuple[str, str], float]:
    """A distinct accuracy per row of the setup: start, start + step, …"""
    return {row: start + i * step for i, row in enumerate(rows_of(setup))}
