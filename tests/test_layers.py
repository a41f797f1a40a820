"""Dependencies point down only: every import of every module (function-local ones included) is read from its
source and checked against the layer map below, and the torch-free layers are imported in a fresh process to
show that torch stays out."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from mebqat_cli import job_args, mebqat

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mebqat"

# what each layer of ``mebqat`` may import from the others (its own modules are always allowed)
ALLOWED: dict[str, set[str]] = {
    "core": {"atomic"},  # atomic.py is a leaf: file writing, no mebqat import
    "atomic": set(),
    "quant": {"core"},
    "models": {"core", "quant"},
    "data": {"core", "atomic"},
    "kernels": {"core", "quant", "models", "data"},
    "methods": {"core", "quant", "models", "data", "kernels"},
    "tracking": {"core", "atomic"},
    "tables": {"core", "atomic"},
    "workflow": {"core"},
    "engine": {"core", "atomic", "quant", "models", "data", "kernels", "methods", "tracking"},
    "cli": {
        "core",
        "atomic",
        "quant",
        "models",
        "data",
        "kernels",
        "methods",
        "tracking",
        "tables",
        "workflow",
        "engine",
    },
    "__main__": {"cli"},
    "__init__": set(),
}
TORCH_FREE = {"core", "atomic", "tracking", "tables", "workflow"}
HEAVY = {"torch", "torchvision", "learn2learn"}


def imported_modules(path: Path, package_parts: tuple[str, ...]) -> set[str]:
    """Absolute names of every module ``path`` imports, wherever the import statement stands."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ((node.module,) if node.module else ()))
                names.add(module)
                if not node.module:  # ``from . import x`` imports the submodule x
                    names.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module or "")
    return names


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def package_imports() -> dict[Path, set[str]]:
    result = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        result[path] = imported_modules(path, relative.parts[:-1])
    return result


def test_every_package_module_imports_only_the_layers_below_it():
    upward = []
    for path, names in package_imports().items():
        layer = layer_of(path)
        assert layer in ALLOWED, f"{path}: layer {layer!r} is not in the layer map of this test"
        for name in names:
            parts = name.split(".")
            if parts[0] == "baselines":
                upward.append(f"{path.relative_to(ROOT)} imports {name} (baselines sit above mebqat)")
            if parts[0] != "mebqat" or len(parts) < 2:
                continue
            target = parts[1]
            if not (PACKAGE / target).is_dir() and not (PACKAGE / f"{target}.py").exists():
                continue  # a name from mebqat/__init__.py (the version), which imports nothing
            if target != layer and target not in ALLOWED[layer]:
                upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not upward, "\n".join(upward)


def test_torch_free_layers_never_import_torch_even_inside_functions():
    offending = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in package_imports().items()
        if layer_of(path) in TORCH_FREE
        for name in names
        if name.split(".")[0] in HEAVY
    ]
    assert not offending, "\n".join(offending)


def test_baselines_use_the_method_layer_and_nothing_above_it():
    allowed = {"core", "quant", "models", "data", "kernels", "methods"}
    offending = []
    for path in sorted((ROOT / "baselines").rglob("*.py")):
        for name in imported_modules(path, path.relative_to(ROOT).with_suffix("").parts[:-1]):
            parts = name.split(".")
            if parts[0] == "mebqat" and len(parts) > 1 and parts[1] not in allowed:
                offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offending, "\n".join(offending)


def test_the_layer_check_sees_a_function_local_upward_import(tmp_path):
    """The checker itself: an import hidden in a function is found, and a relative one is resolved."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ..engine.loop import run\n    import torch\n")
    assert imported_modules(module, ("mebqat", "methods")) == {"mebqat.engine.loop", "torch"}


@pytest.mark.parametrize(
    "statement",
    [
        "import mebqat.tables, mebqat.tracking",
        "import mebqat.tables.claims, mebqat.tables.build, mebqat.tracking.publish, mebqat.workflow.config",
        "from mebqat.cli import main; main(['tables', '--help'])",
        "from mebqat.cli import main; main(['track', '--help'])",
        "from mebqat.cli import main; main(['--help'])",
    ],
)
def test_tables_tracking_and_help_leave_torch_unimported(statement):
    code = (
        f"import sys\ntry:\n    {statement}\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "HEAVY []", done.stdout


JOB_EXCLUDED = ("mlflow", "matplotlib", "sqlalchemy")


@pytest.mark.parametrize(
    "setup, method, dataset, excluded",
    [
        ("svhn_cnn8", "mebqat", "digits", JOB_EXCLUDED),
        # the sequential engines (the CPU default) differentiate with plain autograd: torch.func.grad's first
        # call would import torch._dynamo (~2 core-seconds of every few-shot job)
        ("maml_omniglot_20w1s", "mebqat_maml", "glyphs28", JOB_EXCLUDED + ("torch._dynamo",)),
    ],
)
def test_a_workflow_job_imports_neither_mlflow_nor_a_plotting_library(
    tmp_path, data_root, setup, method, dataset, excluded
):
    """What every workflow job runs (`mebqat run --tracking follower`): MLflow (seconds of imports and the
    store) and matplotlib stay out of the job's process; its run is written by the follower."""
    # the workflow builds the stand-in (the job's smoke dataset) in a rule of its own: rendering glyphs
    # takes matplotlib's fonts
    built = mebqat("data", "build", dataset, "--root", str(data_root), cwd=ROOT, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    argv = job_args(
        data_root, tmp_path / "run", setup, method, "--tracking", "follower", "--device", "cpu", command="run"
    )
    code = (
        f"import sys\nfrom mebqat.cli import main\nassert main({argv!r}) == 0\n"
        f"print('LOADED', sorted(m for m in {excluded!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "LOADED []", done.stdout
    assert (tmp_path / "run" / "accuracy.svg").read_text().startswith("<svg")
    assert '"state": "finished"' in (tmp_path / "run" / "job_status.json").read_text()
