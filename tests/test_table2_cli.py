"""Table 2 jobs through the command line on the offline stand-in: every method produces a valid
metrics.json; a killed job resumes to the same metrics; bad configurations are refused before any work."""

from __future__ import annotations

import json

import jsonschema
import pytest
from mebqat_cli import job_args, killed_and_resumed, mebqat

from mebqat.core.schemas import validator

METRICS_SCHEMA = validator("metrics").schema

JOBS = [  # one job per method, spread over the three setups
    ("cifar10_mobilenetv2", "qat", ["--train-task", "(2,2)"]),
    ("cifar10_mobilenetv2", "adabits", []),
    ("cifar10_preact_resnet20", "apdnn", []),
    ("svhn_cnn8", "mebqat", []),
]


@pytest.mark.parametrize("setup, method, extra", JOBS, ids=[f"{s}-{m}" for s, m, _ in JOBS])
def test_every_method_trains_and_evaluates_to_a_valid_metrics_file(setup, method, extra, data_root, tmp_path):
    out = tmp_path / "run"
    trained = mebqat(*job_args(data_root, out, setup, method, *extra))
    assert trained.returncode == 0, trained.stderr
    for name in (
        "config.yaml",
        "train.log",
        "history.jsonl",
        "train_summary.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (out / name).exists(), name
    evaluated = mebqat("evaluate", str(out), "--threads", "1")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    jsonschema.validate(metrics, METRICS_SCHEMA)
    identity = metrics["identity"]
    assert (identity["setup"], identity["method"], identity["scale"]) == (setup, method, "smoke")
    assert identity["is_standin"] and identity["dataset"] == "digits"
    rows = {(r["bits_w"], r["bits_a"]) for r in metrics["results"]}
    missing = {(r["bits_w"], r["bits_a"]) for r in metrics["not_evaluated"]}
    if method == "apdnn":
        assert rows == {(1, 1), (2, 2), (4, 4), (8, 8), ("FP", "FP")} and (3, 3) in missing
    elif method == "adabits":
        assert rows == {(2, 2), (3, 3), (4, 4)} and ("FP", "FP") in missing
    elif method == "qat":  # smoke/mini: a dedicated model is evaluated at its own bitwidth only
        assert rows == {(2, 2)} and not missing
    else:
        assert len(rows) == (10 if setup != "cifar10_mobilenetv2" else 9) and not missing
    costs = metrics["costs"]
    expected_backward = {"qat": 1, "adabits": 3, "apdnn": 5, "mebqat": 4}[method]
    assert costs["backward_passes_per_update"] == expected_backward
    assert costs["updates"] == 4  # 2 epochs × 2 steps at smoke scale
    assert costs["checkpoint_bytes"] == (out / "checkpoints" / "best.pt").stat().st_size
    assert metrics["provenance"]["config_hash"] and metrics["provenance"]["packages"]["torch"]
    # engine: auto resolves per device (a CPU here) and the run records what it resolved to
    assert metrics["provenance"]["engines"] == {
        "train": "sequential",
        "evaluate": "sequential",
        "memory_format": "channels_last",
    }
    assert all(0 <= r["accuracy"] <= 100 for r in metrics["results"])


@pytest.mark.slow
def test_a_killed_job_resumes_to_the_same_metrics(data_root, tmp_path):
    extra = [
        "--set",
        "train.epochs=5",
        "--set",
        "train.steps_per_epoch=3",
        "--set",
        "train.schedule={name: multistep, milestones: [2, 4], gamma: 0.5}",
    ]
    straight, resumed = killed_and_resumed(
        data_root, tmp_path, "cifar10_preact_resnet20", "mebqat", *extra, timeout=300
    )
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (straight, resumed))
    assert a["results"] == b["results"]
    assert a["selection"] == b["selection"]
    assert {k: a["costs"][k] for k in ("updates", "forward_passes_per_update", "backward_passes_per_update")} == {
        k: b["costs"][k] for k in ("updates", "forward_passes_per_update", "backward_passes_per_update")
    }
    history = [json.loads(line) for line in (resumed / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "train.epoch=3"], "invalid configuration at train: Additional properties are not allowed ('epoch'"),
        (
            ["--set", "data.batch_size=zero"],
            "invalid configuration at data.batch_size: 'zero' is not of type 'integer'",
        ),
        (["--set", "method.tasks=8"], "unknown option(s) ['tasks'] for method 'mebqat'"),
        (["--switch", "shared_lsq_steps=false"], "fidelity switch 'shared_lsq_steps' does not apply to table2"),
        (
            ["--method", "apdnn", "--set", "evaluate.tasks=['(FP,3)']"],
            "bitwidth task (FP,3) is not a valid dorefa task",
        ),
    ],
)
def test_bad_configurations_are_refused_before_any_work(args, message, tmp_path):
    out = tmp_path / "run"
    base = ["train", "--setup", "svhn_cnn8", "--method", "mebqat", "--scale", "smoke", "--out", str(out)]
    result = mebqat(*base, *args)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert not out.exists()


def test_a_run_directory_of_another_configuration_is_refused(data_root, tmp_path):
    out = tmp_path / "run"
    assert mebqat(*job_args(data_root, out, "svhn_cnn8", "mebqat", "--set", "train.epochs=1")).returncode == 0
    other = mebqat(*job_args(data_root, out, "svhn_cnn8", "mebqat", "--set", "train.epochs=2"))
    assert other.returncode == 2 and "holds a run of another configuration" in other.stderr


def test_evaluating_an_untrained_apdnn_bitwidth_is_an_error(data_root, tmp_path):
    out = tmp_path / "run"
    assert (
        mebqat(*job_args(data_root, out, "cifar10_preact_resnet20", "apdnn", "--set", "train.epochs=1")).returncode == 0
    )
    result = mebqat("evaluate", str(out), "--tasks", "(3,3)")
    assert result.returncode == 2
    assert "apdnn cannot be evaluated at (3,3)" in result.stderr
    assert not (out / "metrics.json").exists()


def test_own_task_only_narrows_a_dedicated_job_and_nothing_else():
    from mebqat.core.config import evaluation_tasks
    from mebqat.quant import BitwidthTask

    every = ["(2,2)", "(4,4)", "(FP,FP)"]
    dedicated = {
        "job": {"train_task": "(4,4)"},
        "model": {"scheme": "dorefa"},
        "evaluate": {"tasks": every, "own_task_only": True},
    }
    assert evaluation_tasks(dedicated, None) == [BitwidthTask(4, 4)]
    assert evaluation_tasks(dedicated, ["(2,2)"]) == [BitwidthTask(2, 2)]  # an explicit request wins
    with pytest.raises(ValueError, match=r"--tasks: bitwidth task \(9,9\) is not a valid dorefa task"):
        evaluation_tasks(dedicated, ["(9,9)"])
    multi = {"job": {"train_task": None}, "evaluate": {"tasks": every, "own_task_only": True}}
    assert evaluation_tasks(multi, None) == [BitwidthTask.parse(t) for t in every]
    off = {"job": {"train_task": "(4,4)"}, "evaluate": {"tasks": every, "own_task_only": False}}
    assert len(evaluation_tasks(off, None)) == 3
