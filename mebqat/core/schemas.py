"""The JSON schemas shipped in ``mebqat/resources/schemas`` (job configurations, metrics.json, the claims
file): one cached validator per schema, and the first violation as a message that names where it is.

Lists that the registries own are not typed into the schemas: a node ``{x-registry: NAME}`` becomes
``{enum: [...]}`` with the registered names (``scales``, ``fidelities``, ``quantizers``, ``models``,
``methods``, ``datasets``). Light on purpose (no torch): the tracking and table code read metrics files
through it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .fidelity import PRESETS
from .registry import DATASETS, METHODS, MODELS, QUANTIZERS, ensure_loaded, revision
from .scales import scale_names

SCHEMAS = Path(__file__).resolve().parent.parent / "resources" / "schemas"
REGISTRY_KEY = "x-registry"


def _registry_names() -> dict[str, Callable[[], list[str]]]:
    return {
        "scales": scale_names,
        "fidelities": lambda: list(PRESETS),
        "quantizers": QUANTIZERS.names,
        "models": MODELS.names,
        "methods": METHODS.names,
        "datasets": DATASETS.names,
    }


def with_registry_enums(node: Any) -> Any:
    """A copy of a schema with every ``{x-registry: NAME}`` node turned into an enum of the registered names."""
    if isinstance(node, dict):
        if REGISTRY_KEY in node:
            lists = _registry_names()
            name = node[REGISTRY_KEY]
            if name not in lists:
                raise ValueError(f"schema refers to unknown registry {name!r}; known: {', '.join(lists)}")
            rest = {k: with_registry_enums(v) for k, v in node.items() if k != REGISTRY_KEY}
            return {**rest, "enum": lists[name]()}
        return {k: with_registry_enums(v) for k, v in node.items()}
    if isinstance(node, list):
        return [with_registry_enums(v) for v in node]
    return node


def load_schema(path: Path) -> dict[str, Any]:
    return with_registry_enums(yaml.safe_load(path.read_text()))


@functools.cache
def _validator(name: str, revision: int) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(SCHEMAS / f"{name}.schema.yaml"))


def validator(name: str) -> jsonschema.Draft202012Validator:
    ensure_loaded()
    return _validator(name, revision())


def non_finite(data: Any, path: tuple = ()) -> tuple[tuple, float] | None:
    """(path, value) of the first NaN or infinite number in ``data`` (JSON Schema cannot say "finite")."""
    if isinstance(data, float) and not math.isfinite(data):
        return path, data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = non_finite(value, (*path, key))
        if found:
            return found
    return None


BOUND_KEY = "x-bound"
"""Beside a ``maximum``: why that is the sane bound (e.g. the paper's largest value), said when it is passed."""
MESSAGE_CHARS = 300
"""A violation's message is cut to this many characters (a value of 500,000 items would otherwise be printed)."""


def shown_number(value: Any) -> str:
    """A number as a message shows it: one of more than 30 digits by its digit count."""
    text = str(value)
    return f"a {len(text.lstrip('-'))}-digit number" if isinstance(value, int) and len(text) > 30 else text


def _message(error: jsonschema.ValidationError) -> str:
    why = error.schema.get(BOUND_KEY) if isinstance(error.schema, dict) else None
    if error.validator == "maximum" and why:
        bound = error.validator_value
        return f"{shown_number(error.instance)} is beyond the sane bound {bound} ({why}): give at most {bound}"
    message = error.message
    return message if len(message) <= MESSAGE_CHARS else f"{message[:MESSAGE_CHARS]}… (cut)"


def first_violation(data: Any, name: str) -> str | None:
    """``"at <dotted.path>: <message>"`` for the first violation in path order (a non-finite number
    anywhere is one); None when ``data`` follows the schema ``name``. A ``maximum`` with an ``x-bound``
    reason is a sane bound, and its message says why."""
    errors = sorted(validator(name).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        return f"at {where}: {_message(errors[0])}"
    found = non_finite(data)
    if found:
        return f"at {'.'.join(map(str, found[0])) or '(top level)'}: {found[1]} is not a finite number"
    return None
