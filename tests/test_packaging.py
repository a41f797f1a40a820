"""Packaging contracts: environment.yml lists the runtime packages of pyproject.toml, every dependency
has a tested pin, and CI runs exactly the README's test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
NOT_RUNTIME = {"python", "pip", "pytest"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_lists_the_same_runtime_packages():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {CONDA_TO_PYPI.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)}
    runtime = {_name(d) for d in _pyproject()["dependencies"]}
    assert conda - NOT_RUNTIME == runtime
    python = [d for d in env["dependencies"] if isinstance(d, str) and _name(d) == "python"]
    assert python and python[0].endswith(_pyproject()["requires-python"].lstrip(">="))


def test_every_dependency_has_a_tested_pin():
    pins = {_name(line) for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    project = _pyproject()
    wanted = {_name(d) for d in project["dependencies"] + project["optional-dependencies"]["test"]}
    assert wanted - {"learn2learn"} <= pins  # learn2learn is pinned exactly in pyproject itself


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme.split("\n## ", 2)[1]  # in the first section, beside the main command
    assert re.search(r"^make test$", ci, re.M)
    assert "set -euo pipefail" in ci


def test_readme_fidelity_table_is_the_switch_registry():
    """The README's switch table is the documentation users read: every switch, its tables and both
    behaviours exactly as mebqat/engine/fidelity.py defines them, and no other row."""
    from mebqat.core.fidelity import SWITCHES

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Fidelity"):]
    section = section[:section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {}
    for row in rows:
        name, tables, official, corrected = [cell.strip() for cell in row.strip("|").split("|")]
        documented[name.strip("`")] = (tuple(f"table{t.strip()}" for t in tables.split(",")), official, corrected)
    assert documented == {s.name: (s.tables, s.official, s.corrected) for s in SWITCHES.values()}
