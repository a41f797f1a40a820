"""Packaging contracts: the conda environments (environment.yml, workflow/envs/mebqat.yaml), pyproject.toml and
constraints.txt name the same packages at the same versions, and CI runs exactly the README's test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_FILES = ["environment.yml", "workflow/envs/mebqat.yaml"]
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
BUILD_ONLY = {"python", "pip", "c-compiler", "setuptools", "wheel"}  # the environment's tools, not the harness's
EXTRAS_OF = {"snakemake[reports]": {"pygments"}}  # what a bracketed extra adds, as the package's metadata says


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return {_name(line): line.split("==", 1)[1].strip() for line in lines if line.strip() and not line.startswith("#")}


def _wanted() -> set[str]:
    """Every package pyproject.toml asks for: runtime dependencies, every extra, and what their extras add."""
    project = _pyproject()
    requirements = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
    names = {_name(r) for r in requirements}
    for requirement in requirements:
        names |= next((added for key, added in EXTRAS_OF.items() if requirement.startswith(key)), set())
    return names


def _conda(path: str) -> tuple[dict, dict[str, str], list[str]]:
    """(the file, {PyPI name: conda version spec}, pip section) of a conda environment file."""
    env = yaml.safe_load((ROOT / path).read_text())
    specs = {}
    for dependency in env["dependencies"]:
        if isinstance(dependency, str):
            name = _name(dependency)
            specs[CONDA_TO_PYPI.get(name, name)] = dependency[len(name) :].strip()
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return env, specs, pip


@pytest.mark.parametrize("path", CONDA_FILES)
def test_conda_environment_has_the_pins_of_constraints(path):
    env, specs, pip = _conda(path)
    # snakemake and its SLURM executor live on bioconda, whose packages are built against conda-forge
    assert env["channels"] == ["conda-forge", "bioconda", "nodefaults"]
    pins = _pins()
    assert set(specs) - BUILD_ONLY == set(pins)
    for name, version in pins.items():
        assert specs[name] == f"={version}", f"{path}: {name} {specs[name]!r}, constraints.txt pins {version}"
    assert specs["python"] == "=" + _pyproject()["requires-python"].removeprefix(">=")
    assert _wanted() - {"learn2learn"} <= set(specs)


@pytest.mark.parametrize("path", CONDA_FILES)
def test_conda_environment_builds_learn2learn_with_pip(path):
    """No conda build of learn2learn 0.2.0 fits Python 3.11: pip builds it, at pyproject's pin, with its C
    files regenerated (build_ext), and installs the project."""
    _, _, pip = _conda(path)
    (pinned,) = [r for r in _pyproject()["dependencies"] if _name(r) == "learn2learn"]
    assert f"{pinned} --config-settings=--build-option=build_ext" in pip
    assert any(line.startswith("--editable ") for line in pip)
    assert "PIP_NO_DEPS=1 PIP_NO_BUILD_ISOLATION=0" in (ROOT / path).read_text()


def test_the_two_conda_environments_are_one():
    (root_env, root_specs, root_pip), (rule_env, rule_specs, rule_pip) = (_conda(p) for p in CONDA_FILES)
    assert (root_env["channels"], root_specs) == (rule_env["channels"], rule_specs)
    assert [line for line in root_pip if not line.startswith("--editable")] == [
        line for line in rule_pip if not line.startswith("--editable")
    ]


def test_every_dependency_has_a_tested_pin():
    assert _wanted() - {"learn2learn"} <= set(_pins())  # learn2learn is pinned exactly in pyproject itself


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme.split("\n## ", 2)[1]  # in the first section, beside the main command
    assert re.search(r"^make test$", ci, re.M)
    assert "set -euo pipefail" in ci


def _pip_sources():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pip_sources", ROOT / "scripts" / "pip_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uv_gets_the_package_sources_pip_is_configured_with():
    """scripts/setup_env.sh installs with uv, which reads no pip configuration: the most specific setting of each
    source wins (environment, [install], [global]), and whitespace-separated values become one flag each."""
    listing = "\n".join(
        [
            ":env:.default-timeout='180'",
            ":env:.find-links='/opt/wheels'",
            "global.cert='/etc/ssl/certs/ca.crt'",
            "global.constraint='/etc/xdg/pip/constraints.txt'",
            "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'",
            "global.find-links='/elsewhere'",
            "global.index-url='https://mirror.example/simple'",
            "install.index-url='https://install.example/simple'",
            "download.index-url='https://ignored.example/simple'",
        ]
    )
    uv_arguments = _pip_sources().uv_arguments
    assert uv_arguments(listing) == [
        "--index-url",
        "https://install.example/simple",
        "--extra-index-url",
        "file:///opt/a/simple",
        "--extra-index-url",
        "file:///opt/b/simple",
        "--find-links",
        "/opt/wheels",
        "--constraint",
        "/etc/xdg/pip/constraints.txt",
    ]
    assert uv_arguments("") == []
    assert uv_arguments("global.index-url=\nglobal.find-links=/x") == ["--find-links", "/x"]
