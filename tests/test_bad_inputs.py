"""Every kind of bad input is refused cleanly: a non-zero exit, one line on stderr that names the culprit (the
flag or the file), no traceback, and the directory tree byte-identical afterwards — except where the error
path is documented (train.log records why a job in an existing run directory stopped; a damaged cache or
fixed task set is rebuilt, identically). Table-driven: each case builds its own bad input in a scratch
directory, runs `mebqat` in-process (a few through a real process), and checks the tree before and after."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mebqat_cli import mebqat

from mebqat.cli import main
from mebqat.core.schemas import validator

SVHN = ["--setup", "svhn_cnn8", "--scale", "smoke", "--threads", "1"]


def snapshot(root: Path, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under root (relative path → SHA-256), minus names in ``ignore``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ignore
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_root) -> Path:
    """A finished smoke-scale Table 2 job (trained and evaluated), copied by the cases that damage it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert (
        main(["run", *SVHN, "--method", "mebqat", "--out", str(out), "--set", f"data.root={data_root}", "--no-track"])
        == 0
    )
    return out


@pytest.fixture(scope="module")
def apdnn_run(tmp_path_factory, data_root) -> Path:
    out = tmp_path_factory.mktemp("apdnn") / "run"
    assert main(["train", *SVHN, "--method", "apdnn", "--out", str(out), "--set", f"data.root={data_root}"]) == 0
    return out


@dataclass
class Case:
    name: str
    args: Callable[[Path, dict], list[str]]
    """(scratch dir, context) → the command line; the context holds data_root, finished, apdnn."""
    culprit: str
    """Text the error line must contain (the flag or the file, and the problem)."""
    setup: Callable[[Path, dict], None] = lambda scratch, ctx: None
    documented: tuple[str, ...] = ()
    """File names the error path may change (train.log: why the job stopped)."""
    exit_code: int | None = 2
    stdin_process: bool = False
    """Run through a real process (its real exit status, and nothing printed but the one line)."""


def copy_run(source_key: str):
    def setup(scratch: Path, ctx: dict) -> None:
        shutil.copytree(ctx[source_key], scratch / "run")

    return setup


def write(relative: str, content: bytes | str, base: Callable[[Path, dict], None] | None = None):
    def setup(scratch: Path, ctx: dict) -> None:
        if base is not None:
            base(scratch, ctx)
        path = scratch / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def truncate(relative: str, base: Callable[[Path, dict], None]):
    def setup(scratch: Path, ctx: dict) -> None:
        base(scratch, ctx)
        path = scratch / relative
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])

    return setup


def edit_json(relative: str, change: Callable[[dict], None], base: Callable[[Path, dict], None]):
    def setup(scratch: Path, ctx: dict) -> None:
        base(scratch, ctx)
        path = scratch / relative
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return setup


def train(scratch: Path, ctx: dict, *extra: str, method: str = "mebqat") -> list[str]:
    return [
        "train",
        *SVHN,
        "--method",
        method,
        "--out",
        str(scratch / "out"),
        "--set",
        f"data.root={ctx['data_root']}",
        *extra,
    ]


def metrics_with(change: Callable[[dict], None]):
    return edit_json(
        "runs/a/metrics.json",
        change,
        lambda scratch, ctx: shutil.copytree(
            ctx["finished"], scratch / "runs" / "a", ignore=shutil.ignore_patterns("checkpoints")
        ),
    )


CASES = [
    # ---------------------------------------------------------------- job flags
    Case("set value not YAML", lambda s, c: train(s, c, "--set", "train.epochs=[1,"), "--set 'train.epochs=[1,'"),
    Case("set without =", lambda s, c: train(s, c, "--set", "train.epochs"), "--set 'train.epochs' must look like"),
    Case("set empty key part", lambda s, c: train(s, c, "--set", "train..epochs=2"), "has an empty part"),
    Case(
        "set wrong type",
        lambda s, c: train(s, c, "--set", "train.epochs=zero"),
        "at train.epochs: 'zero' is not of type 'integer'",
    ),
    Case(
        "set unknown key",
        lambda s, c: train(s, c, "--set", "train.epoch=3"),
        "Additional properties are not allowed ('epoch'",
    ),
    Case("set negative epochs", lambda s, c: train(s, c, "--set", "train.epochs=-1"), "at train.epochs: -1 is less"),
    Case(
        "set unknown method option",
        lambda s, c: train(s, c, "--set", "method.tasks=3"),
        "unknown option(s) ['tasks'] for method 'mebqat'",
    ),
    Case(
        "threads negative",
        lambda s, c: train(s, c, "--threads", "-1"),
        "argument --threads: must be a positive integer, got -1",
    ),
    Case(
        "threads not a number",
        lambda s, c: train(s, c, "--threads", "two"),
        "argument --threads: must be a positive integer, got 'two'",
    ),
    Case("device unknown", lambda s, c: train(s, c, "--device", "tpu"), "argument --device: must be auto, cpu"),
    Case(
        "device cuda without CUDA",
        lambda s, c: train(s, c, "--device", "cuda"),
        "--device cuda: CUDA is not available on this machine",
    ),
    Case(
        "setup unknown",
        lambda s, c: ["train", "--setup", "nosuch", "--method", "qat", "--out", str(s / "o")],
        "unknown setup 'nosuch'",
    ),
    Case(
        "method unknown",
        lambda s, c: ["train", *SVHN, "--method", "nosuch", "--out", str(s / "o")],
        "argument --method: invalid choice: 'nosuch'",
    ),
    Case(
        "method not of the setup's table",
        lambda s, c: ["train", *SVHN, "--method", "fomaml", "--out", str(s / "o")],
        "method 'fomaml' is not part of setup 'svhn_cnn8'",
    ),
    Case(
        "dedicated without train task",
        lambda s, c: train(s, c, method="qat"),
        "method 'qat' trains one model per bitwidth: give train_task",
    ),
    Case(
        "train task not a candidate",
        lambda s, c: train(s, c, "--train-task", "(FP,3)", method="qat"),
        "bitwidth task (FP,3) is not a valid dorefa task",
    ),
    Case(
        "train task unreadable",
        lambda s, c: train(s, c, "--train-task", "4-bit", method="qat"),
        "cannot read bitwidth task '4-bit'",
    ),
    Case(
        "train task for a one-model method",
        lambda s, c: train(s, c, "--train-task", "(4,4)"),
        "method 'mebqat' does not take a train_task",
    ),
    Case("seed negative", lambda s, c: train(s, c, "--seed", "-1"), "seed must be a non-negative integer"),
    Case(
        "switch of another table",
        lambda s, c: train(s, c, "--switch", "shared_lsq_steps=false"),
        "fidelity switch 'shared_lsq_steps' does not apply to table2",
    ),
    Case("switch unknown", lambda s, c: train(s, c, "--switch", "nosuch=true"), "unknown fidelity switch 'nosuch'"),
    Case(
        "switch not boolean",
        lambda s, c: train(s, c, "--switch", "per_batch_accuracy=maybe"),
        "fidelity switch per_batch_accuracy must be true or false",
    ),
    Case(
        "scale unknown",
        lambda s, c: ["train", "--setup", "svhn_cnn8", "--method", "mebqat", "--scale", "huge"],
        "argument --scale: invalid choice: 'huge'",
    ),
    Case("no out", lambda s, c: ["train", *SVHN, "--method", "mebqat"], "--out DIR is required to train"),
    Case(
        "out is a file",
        lambda s, c: [
            "train",
            *SVHN,
            "--method",
            "mebqat",
            "--out",
            str(s / "file.txt"),
            "--set",
            f"data.root={c['data_root']}",
        ],
        "is an existing file, not a directory",
        setup=write("file.txt", "x"),
    ),
    Case(
        "out below a file",
        lambda s, c: [
            "train",
            *SVHN,
            "--method",
            "mebqat",
            "--out",
            str(s / "file.txt" / "run"),
            "--set",
            f"data.root={c['data_root']}",
        ],
        "file.txt is a file, not a directory",
        setup=write("file.txt", "x"),
    ),
    Case(
        "dataset missing at paper scale",
        lambda s, c: [
            "train",
            "--setup",
            "svhn_cnn8",
            "--method",
            "mebqat",
            "--scale",
            "paper",
            "--out",
            str(s / "o"),
            "--set",
            f"data.root={s / 'nodata'}",
            "--threads",
            "1",
        ],
        "dataset 'svhn' not found",
    ),
    # ---------------------------------------------------------------- job files
    Case(
        "config missing",
        lambda s, c: ["train", "--config", str(s / "nope.yaml"), "--out", str(s / "o")],
        "nope.yaml does not exist",
    ),
    Case(
        "config not UTF-8",
        lambda s, c: ["train", "--config", str(s / "job.yaml"), "--out", str(s / "o")],
        "job.yaml is not a UTF-8 text file",
        setup=write("job.yaml", b"setup: \xff\xfe\x00svhn"),
    ),
    Case(
        "config a YAML list",
        lambda s, c: ["train", "--config", str(s / "job.yaml"), "--out", str(s / "o")],
        "job.yaml must hold a mapping",
        setup=write("job.yaml", "- setup: svhn_cnn8\n"),
    ),
    Case(
        "config not YAML",
        lambda s, c: ["train", "--config", str(s / "job.yaml"), "--out", str(s / "o")],
        "job.yaml is not valid YAML",
        setup=write("job.yaml", "setup: [svhn\n"),
    ),
    Case(
        "config and spec",
        lambda s, c: ["train", "--config", str(s / "job.yaml"), "--spec", "{}", "--out", "o"],
        "give either --config or --spec",
        setup=write("job.yaml", "setup: svhn_cnn8\n"),
    ),
    Case(
        "spec not a mapping",
        lambda s, c: ["train", "--spec", "[1, 2]", "--out", str(s / "o")],
        "--spec must be a mapping",
    ),
    Case(
        "spec unknown key",
        lambda s, c: [
            "train",
            "--spec",
            "{setup: svhn_cnn8, method: qat, scale: smoke, colour: red}",
            "--out",
            str(s / "o"),
        ],
        "unknown job key(s) ['colour']",
    ),
    Case(
        "spec method a list",
        lambda s, c: ["train", "--spec", "{setup: svhn_cnn8, method: [mebqat], scale: smoke}", "--out", str(s / "o")],
        "--spec: method must be a method name, e.g. mebqat, got a list",
    ),
    Case(
        "spec setup a list",
        lambda s, c: ["train", "--spec", "{setup: [svhn_cnn8], method: mebqat, scale: smoke}", "--out", str(s / "o")],
        "--spec: setup must be a setup name, e.g. svhn_cnn8, got a list",
    ),
    Case(
        "spec overrides a list",
        lambda s, c: [
            "train",
            "--spec",
            "{setup: svhn_cnn8, method: mebqat, scale: smoke, overrides: [1]}",
            "--out",
            "o",
        ],
        "--spec: overrides must be a mapping of config sections",
    ),
    Case(
        "spec overrides a string",
        lambda s, c: [
            "train",
            "--spec",
            "{setup: svhn_cnn8, method: mebqat, scale: smoke, overrides: x}",
            "--out",
            "o",
        ],
        "--spec: overrides must be a mapping of config sections, e.g. {train: {epochs: 3}}, got a string ('x')",
    ),
    Case(
        "spec fidelity switches a list",
        lambda s, c: [
            "train",
            "--spec",
            "{setup: svhn_cnn8, method: mebqat, scale: smoke, fidelity_switches: [kd]}",
            "--out",
            str(s / "o"),
        ],
        "--spec: fidelity_switches must be a mapping of switch names to true/false, got a list",
    ),
    Case(
        "spec seed a string",
        lambda s, c: ["train", "--spec", "{setup: svhn_cnn8, method: mebqat, scale: smoke, seed: one}", "--out", "o"],
        "--spec: seed must be a non-negative integer, got a string",
    ),
    Case(
        "spec unknown keys of mixed types",
        lambda s, c: ["train", "--spec", "{setup: svhn_cnn8, method: mebqat, scale: smoke, 1: 2, a: 3}", "--out", "o"],
        "--spec: unknown job key(s) ['a', 1]",
    ),
    Case(
        "spec an integer of 5000 digits",
        lambda s, c: ["train", "--spec", "{setup: svhn_cnn8, method: mebqat, scale: smoke, seed: " + "9" * 5000 + "}"],
        "--spec: an integer of 5000 digits at line 1, column 56 is beyond any sane value",
    ),
    Case(
        "config file overrides a list",
        lambda s, c: ["train", "--config", str(s / "job.yaml"), "--out", str(s / "o")],
        "job.yaml: overrides must be a mapping of config sections",
        setup=write("job.yaml", "setup: svhn_cnn8\nmethod: mebqat\nscale: smoke\noverrides: [1, 2]\n"),
    ),
    Case(
        "config file an integer of 5000 digits",
        lambda s, c: ["train", "--config", str(s / "job.yaml"), "--out", str(s / "o")],
        "job.yaml: an integer of 5000 digits at line 4, column 9 is beyond any sane value",
        setup=write("job.yaml", "setup: svhn_cnn8\nmethod: mebqat\nscale: smoke\nseed:   " + "7" * 5000 + "\n"),
    ),
    Case(
        "set an integer of 100000 digits",
        lambda s, c: train(s, c, "--set", "train.epochs=" + "9" * 100_000),
        "--set train.epochs: the value is an integer of 100000 digits, beyond any sane value of train.epochs",
        stdin_process=True,
    ),
    Case(
        "set epochs of 4000 digits",
        lambda s, c: train(s, c, "--set", "train.epochs=" + "9" * 4000),
        "at train.epochs: a 4000-digit number is beyond the sane bound 100000",
    ),
    Case(
        "set epochs 10^21",
        lambda s, c: train(s, c, "--set", "train.epochs=1000000000000000000000"),
        "at train.epochs: 1000000000000000000000 is beyond the sane bound 100000 (the paper's longest run is 600 "
        "epochs): give at most 100000",
    ),
    Case(
        "set steps per epoch beyond the bound",
        lambda s, c: train(s, c, "--set", "train.steps_per_epoch=10000000"),
        "at train.steps_per_epoch: 10000000 is beyond the sane bound 1000000",
    ),
    Case(
        "set batch size beyond the bound",
        lambda s, c: train(s, c, "--set", "data.batch_size=1e6"),
        "at data.batch_size: 1000000.0 is beyond the sane bound 65536",
    ),
    Case(
        "set eval batch size beyond the bound",
        lambda s, c: train(s, c, "--set", "data.eval_batch_size=1000000"),
        "at data.eval_batch_size: 1000000 is beyond the sane bound 65536 (the paper's largest batch is 256)",
    ),
    Case(
        "seed beyond numpy's range",
        lambda s, c: train(s, c, "--seed", "4294967296"),
        "at job.seed: 4294967296 is beyond the sane bound 4294967295 (numpy seeds lie in 0 to 2^32 − 1)",
    ),
    Case(
        "set meta-test tasks beyond the bound",
        lambda s, c: [
            "train",
            "--setup",
            "pn_omniglot_20w1s",
            "--method",
            "pn",
            "--scale",
            "smoke",
            "--out",
            str(s / "o"),
            "--set",
            "data.test_tasks=10000000",
        ],
        "at data.test_tasks: 10000000 is beyond the sane bound 100000 (the paper meta-tests on 600 tasks)",
    ),
    Case(
        "set meta-batch beyond the bound",
        lambda s, c: [
            "train",
            "--setup",
            "maml_omniglot_20w1s",
            "--method",
            "fomaml",
            "--scale",
            "smoke",
            "--out",
            str(s / "o"),
            "--set",
            "train.meta_batch=5000",
        ],
        "at train.meta_batch: 5000 is beyond the sane bound 1024 (the paper's largest meta-batch is 16 tasks)",
    ),
    Case(
        "evaluate tasks repeated",
        lambda s, c: train(s, c, "--set", 'evaluate.tasks=["(2,2)","(2,2)","(FP,FP)"]'),
        "evaluate.tasks names (2,2) twice ('(2,2)' and '(2,2)'): list each bitwidth once",
    ),
    Case(
        "evaluate tasks repeated in another spelling",
        lambda s, c: train(s, c, "--set", 'evaluate.tasks=["(4,4)","w4a4"]'),
        "evaluate.tasks names (4,4) twice ('(4,4)' and 'w4a4')",
    ),
    Case(
        "evaluate tasks 5000 times over",
        lambda s, c: train(s, c, "--set", "evaluate.tasks=[" + ",".join(['"(2,2)"'] * 5000) + "]"),
        "evaluate.tasks lists 5000 tasks, more than the 75 valid dorefa bitwidth pairs: list each bitwidth once",
    ),
    # ---------------------------------------------------------------- run directories read back
    Case("evaluate a missing directory", lambda s, c: ["evaluate", str(s / "nope")], "is not a run directory"),
    Case(
        "evaluate an unfinished run",
        lambda s, c: ["evaluate", str(s / "run")],
        "training has not finished",
        setup=lambda s, c: (copy_run("finished")(s, c), (s / "run" / "train_summary.json").unlink()),
    ),
    Case(
        "evaluate a bitwidth outside the family",
        lambda s, c: ["evaluate", str(s / "run"), "--tasks", "(9,9)"],
        "--tasks: bitwidth task (9,9) is not a valid dorefa task",
        setup=copy_run("finished"),
    ),
    Case(
        "evaluate an untrained ApDNN bitwidth",
        lambda s, c: ["evaluate", str(s / "run"), "--tasks", "(3,3)"],
        "apdnn cannot be evaluated at (3,3)",
        setup=copy_run("apdnn"),
    ),
    Case(
        "run config a YAML list",
        lambda s, c: ["evaluate", str(s / "run")],
        "config.yaml must hold a mapping",
        setup=write("run/config.yaml", "- 1\n- 2\n", copy_run("finished")),
    ),
    Case(
        "run config edited",
        lambda s, c: ["evaluate", str(s / "run")],
        "config.yaml: invalid configuration",
        setup=write("run/config.yaml", "job: {setup: svhn_cnn8, method: mebqat}\n", copy_run("finished")),
    ),
    Case(
        "train summary garbage",
        lambda s, c: ["evaluate", str(s / "run")],
        "train_summary.json is not valid JSON",
        setup=write("run/train_summary.json", '{"epochs": 2,', copy_run("finished")),
    ),
    Case(
        "history line broken",
        lambda s, c: [
            "train",
            *SVHN,
            "--method",
            "mebqat",
            "--out",
            str(s / "run"),
            "--set",
            f"data.root={c['data_root']}",
        ],
        "history.jsonl line 2 is not valid JSON",
        documented=("train.log",),
        setup=lambda s, c: (
            copy_run("finished")(s, c),
            (s / "run" / "history.jsonl").write_text(
                (s / "run" / "history.jsonl").read_text().splitlines()[0] + '\n{"epoch": 2,\n'
            ),
        ),
    ),
    Case(
        "checkpoint cut short",
        lambda s, c: ["evaluate", str(s / "run")],
        "best.pt cannot be read",
        setup=truncate("run/checkpoints/best.pt", copy_run("finished")),
    ),
    Case(
        "checkpoint of another job",
        lambda s, c: ["evaluate", str(s / "run")],
        "written by another configuration",
        setup=lambda s, c: (
            copy_run("finished")(s, c),
            shutil.copy(c["apdnn"] / "checkpoints" / "best.pt", s / "run" / "checkpoints" / "best.pt"),
        ),
    ),
    # ---------------------------------------------------------------- tables and tracking
    Case(
        "tables from a missing path",
        lambda s, c: ["tables", "build", "--runs", str(s / "nope"), "--out", str(s / "t")],
        "no such run directory or metrics file",
    ),
    Case(
        "tables with a NaN accuracy",
        lambda s, c: ["tables", "build", "--runs", str(s / "runs"), "--out", str(s / "t")],
        "at results.0.accuracy: nan is not a finite number",
        setup=metrics_with(lambda m: m["results"][0].update(accuracy=float("nan"))),
    ),
    Case(
        "tables with an accuracy above 100",
        lambda s, c: ["tables", "build", "--runs", str(s / "runs"), "--out", str(s / "t")],
        "150.0 is greater than the maximum of 100",
        setup=metrics_with(lambda m: m["results"][0].update(accuracy=150.0)),
    ),
    Case(
        "tables unknown table",
        lambda s, c: ["tables", "build", "--runs", str(s), "--out", str(s / "t"), "--tables", "7"],
        "unknown table '7'",
    ),
    Case(
        "claims with a damaged per-item file",
        lambda s, c: ["tables", "claims", "--runs", str(s / "runs"), "--out", str(s / "c")],
        "image_correct.npz",
        setup=lambda s, c: (
            metrics_with(lambda m: None)(s, c),
            shutil.copy(c["finished"] / "image_correct.npz", s / "runs" / "a" / "image_correct.npz"),
            (s / "runs" / "a" / "image_correct.npz").write_bytes(b"PK\x03\x04 broken"),
        ),
    ),
    Case(
        "track an unfinished run",
        lambda s, c: ["track", "log", str(s / "run"), "--uri", f"sqlite:///{s / 'm.db'}"],
        "is not finished (no metrics.json)",
        setup=lambda s, c: copy_run("apdnn")(s, c),
    ),
    Case(
        "track an unsupported store",
        lambda s, c: ["track", "init", "--uri", "ftp://host/x"],
        "unsupported MLflow tracking URI 'ftp://host/x'",
    ),
    Case(
        "track tables from a missing directory",
        lambda s, c: ["track", "tables", str(s / "nope"), "--uri", f"sqlite:///{s / 'm.db'}"],
        "does not exist",
    ),
    # ---------------------------------------------------------------- data and models
    Case(
        "data build a seed digits has not",
        lambda s, c: ["data", "build", "digits", "--seed", "3", "--root", str(s / "d")],
        "digits has no seed",
    ),
    Case("data build unknown", lambda s, c: ["data", "build", "nosuch"], "argument name: invalid choice: 'nosuch'"),
    Case(
        "data preview zero rows",
        lambda s, c: [
            "data",
            "preview",
            "glyphs28",
            "--rows",
            "0",
            "--root",
            str(c["data_root"]),
            "--out",
            str(s / "p.png"),
        ],
        "argument --rows: must be a positive integer",
    ),
    Case(
        "describe without ways",
        lambda s, c: ["describe", "maml_convnet", "--dataset", "omniglot"],
        "missing a required argument: 'ways'",
    ),
    Case(
        "describe unknown family",
        lambda s, c: ["describe", "cnn_svhn", "--scheme", "int8"],
        "unknown quantizer family 'int8'",
    ),
    # ---------------------------------------------------------------- through a real process
    Case(
        "divergence at the last update",
        lambda s, c: train(
            s, c, "--set", "train.optimizer.lr=1e30", "--set", "train.epochs=1", "--set", "train.steps_per_epoch=1"
        ),
        "the model's outputs are not finite",
        documented=("train.log", "config.yaml", "data_fingerprint.json"),
        stdin_process=True,
    ),
    Case(
        "set a YAML error in a real process",
        lambda s, c: train(s, c, "--set", "train.epochs=[1,"),
        "--set 'train.epochs=[1,'",
        stdin_process=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_cleanly(case, tmp_path, data_root, finished, apdnn_run, capsys):
    context = {"data_root": data_root, "finished": finished, "apdnn": apdnn_run}
    case.setup(tmp_path, context)
    args = case.args(tmp_path, context)
    before = snapshot(tmp_path, case.documented)
    data_before = snapshot(data_root)
    if case.stdin_process:
        done = mebqat(*args, timeout=600)
        code, stderr = done.returncode, done.stderr
    else:
        try:
            code = main(args)
        except SystemExit as exit_:  # argparse refuses a flag by exiting 2
            code = exit_.code
        stderr = capsys.readouterr().err
    assert code != 0 and (case.exit_code is None or code == case.exit_code), (code, stderr)
    assert "Traceback" not in stderr, stderr
    error_lines = [line for line in stderr.splitlines() if "error" in line]
    assert error_lines and case.culprit in error_lines[-1], stderr
    if not case.documented:
        assert len([line for line in stderr.splitlines() if line.strip()]) <= 2, stderr  # usage + the error line
    new = {p for p in snapshot(tmp_path, case.documented) if p not in before}
    assert snapshot(tmp_path, case.documented) == before, f"changed or created: {sorted(new)}"
    assert snapshot(data_root) == data_before
    if "train.log" in case.documented and (tmp_path / "out" / "train.log").exists():
        assert case.culprit in (tmp_path / "out" / "train.log").read_text()  # the reason is in the job's log


def test_there_are_at_least_45_kinds_of_bad_input():
    assert len(CASES) >= 45


def damage_cache(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "cut":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        middle = len(data) // 2
        data[middle : middle + 64] = b"\x00" * 64
        path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "name, pattern, how",
    [
        ("digits", "standins/digits-3x40x40-v1.npz", "cut"),
        ("digits", "standins/digits-3x40x40-v1.npz", "overwrite"),
        ("glyphs28", "standins/glyphs28-seed0-v*.npz", "overwrite"),
    ],
)
def test_a_damaged_stand_in_cache_is_named_and_rebuilt_identically(name, pattern, how, data_root, tmp_path, capsys):
    from mebqat.data import build_standin

    build_standin(name, data_root)
    root = tmp_path / "data"
    shutil.copytree(data_root / "standins", root / "standins")
    path = next(root.glob(pattern))
    original = path.read_bytes()
    damage_cache(path, how)
    assert main(["data", "build", name, "--root", str(root)]) == 0
    assert path.read_bytes() == original
    assert str(path) in capsys.readouterr().err  # the warning names the damaged file


def test_a_damaged_fixed_task_set_is_redrawn_identically(finished, data_root, tmp_path):
    from mebqat.data import fixed_test_tasks, load_fewshot

    split = load_fewshot("glyphs28", "test", data_root)
    tasks = fixed_test_tasks(split, 20, 1, 2, num_tasks=8, seed=0, cache_dir=tmp_path)
    original = tasks.path.read_bytes()
    damage_cache(tasks.path, "overwrite")
    again = fixed_test_tasks(split, 20, 1, 2, num_tasks=8, seed=0, cache_dir=tmp_path)
    assert again.path.read_bytes() == original and np.array_equal(again.indices, tasks.indices)


@pytest.mark.parametrize("command", ["train", "evaluate", "run"])
def test_temp_files_of_killed_writes_are_removed_when_the_job_starts_again(command, finished, tmp_path, data_root):
    """Every command that writes a run directory removes what a killed one left (RunDir.claimed, under the
    directory's lock: no other job's write can be in flight)."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    leftovers = [run / ".metrics.json.abc123.tmp", run / "checkpoints" / ".last.pt.x7y8z9.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    job = [*SVHN, "--method", "mebqat", "--out", str(run), "--set", f"data.root={data_root}"]
    args = {"train": ["train", *job], "evaluate": ["evaluate", str(run), "--threads", "1"]}
    assert main(args.get(command, ["run", *job, "--no-track"])) == 0
    assert not any(path.exists() for path in leftovers)
    assert not (run / ".job.lock").exists()


def test_a_subset_evaluation_never_replaces_the_full_metrics(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    full = (run / "metrics.json").read_bytes()
    assert main(["evaluate", str(run), "--tasks", "(4,4)", "(2,2)", "--threads", "1"]) == 0
    assert (run / "metrics.json").read_bytes() == full
    subset = json.loads((run / "metrics-w4a4_w2a2.json").read_text())
    assert [(r["bits_w"], r["bits_a"]) for r in subset["results"]] == [(4, 4), (2, 2)]
    assert (run / "image_correct-w4a4_w2a2.npz").is_file()
    assert not list(validator("metrics").iter_errors(subset))  # a subset file is a valid metrics file too


@pytest.mark.parametrize("number, hint", [(28, "the disk is full"), (30, "read-only"), (13, "may write")])
def test_file_system_errors_are_one_line_with_a_hint(number, hint, monkeypatch, capsys):
    """A full disk or a read-only place (which a root test cannot produce) ends the command with one line."""
    import mebqat.cli.run as run_command

    def refuse(args):
        raise OSError(number, os.strerror(number), "/results/runs/x/checkpoints/last.pt")

    monkeypatch.setattr(run_command, "run", refuse)
    assert main(["run", "--setup", "svhn_cnn8", "--method", "mebqat", "--out", "x"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "last.pt" in error and hint in error
