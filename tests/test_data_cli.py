"""``mebqat data``: help on every action, build, preview and the missing-dataset error. The preview goes
through the installed console script; the rest calls the same ``main`` in-process (no interpreter start)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image
from test_cli import SCRIPT

from mebqat.cli import main


@pytest.mark.parametrize("action", [[], ["list"], ["build"], ["preview"], ["synthesize"]])
def test_help_on_every_data_action(action, capsys):
    with pytest.raises(SystemExit) as done:
        main(["data", *action, "--help"])
    assert done.value.code == 0
    assert f"usage: mebqat data {' '.join(action)}".strip() in capsys.readouterr().out


def test_build_digits_reports_and_caches(data_root, capsys):
    assert main(["data", "build", "digits", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "digits (stand-in for cifar10 / svhn)" in out and "train 1293, val 144, test 360" in out
    for shape in ("3x32x32", "3x40x40"):
        assert (data_root / "standins" / f"digits-{shape}-v1.npz").is_file()


def test_preview_glyphs28_writes_a_titled_grid(data_root, tmp_path):
    assert SCRIPT, "the console script `mebqat` is not installed (pip install -e .)"
    out = tmp_path / "x.png"
    result = subprocess.run(
        [
            SCRIPT,
            "data",
            "preview",
            "glyphs28",
            "--root",
            str(data_root),
            "--out",
            str(out),
            "--rows",
            "6",
            "--cols",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 7 * 28 and image.height > 6 * 28
        assert image.info["Title"] == "glyphs28 (stand-in for omniglot): train split, one row per class"
        assert len(np.unique(np.asarray(image.convert("L")))) > 10  # an actual picture, not a blank canvas


def test_missing_real_dataset_is_a_clear_cli_error(tmp_path, capsys):
    assert main(["data", "build", "svhn", "--root", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "dataset 'svhn' not found" in err and "ufldl.stanford.edu/housenumbers" in err
    assert not (tmp_path / "nothing").exists()


def test_list_names_every_dataset_and_marks_stand_ins(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("cifar10", "svhn", "digits", "omniglot", "miniimagenet", "glyphs28", "glyphs84"):
        assert name in out
    assert "glyphs84 (stand-in for miniimagenet)" in out
