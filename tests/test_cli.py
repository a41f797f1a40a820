"""The ``mebqat`` console script: --help everywhere, and ``describe``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mebqat.cli import COMMANDS

SCRIPT = shutil.which("mebqat", path=str(Path(sys.executable).parent)) or shutil.which("mebqat")


def run(*args: str) -> subprocess.CompletedProcess:
    assert SCRIPT, "the console script `mebqat` is not installed (pip install -e .)"
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_every_subcommand_has_help():
    top = run("--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert command.NAME in top.stdout
        sub = run(command.NAME, "--help")
        assert sub.returncode == 0 and "usage: mebqat " + command.NAME in sub.stdout


def test_describe_reports_counts_and_quantized_tensors():
    result = run("describe", "mobilenetv2_cifar", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["params"] == 2_236_682
    assert info["bn_params"] == 34_112
    assert info["quantizer_params"] == 35
    assert round(100 * info["bn_share"], 2) == 1.53
    assert len(info["weight_quantizers"]) == 53 and len(info["activation_quantizers"]) == 35
    assert info["weight_quantizers"][0] == {
        "name": "stem.0.weight",
        "shape": [32, 3, 3, 3],
        "role": "first",
        "kind": "conv",
        "always_fp": False,
    }
    text = run("describe", "maml_convnet", "--dataset", "miniimagenet", "--ways", "5")
    assert "32,773" in text.stdout and "always FP" in text.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["describe", "maml_convnet"], "missing a required argument: 'ways'"),
        (["describe", "proto_convnet", "--dataset", "cub"], "unknown few-shot dataset preset 'cub'"),
        (["describe", "cnn_svhn", "--scheme", "int8"], "unknown quantizer family 'int8'"),
    ],
)
def test_describe_bad_input_is_a_clear_error(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
