"""The JSON schemas shipped in ``mebqat/resources/schemas`` (job configurations, metrics.json): one cached
validator per schema, and the first violation as a message that names where it is. Light on purpose
(no torch): the tracking and table code read metrics files through it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parent / "resources" / "schemas"


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load((SCHEMAS / f"{name}.schema.yaml").read_text()))


def first_violation(data: Any, name: str) -> str | None:
    """``"at <dotted.path>: <message>"`` for the first violation in path order; None when ``data`` follows
    the schema ``name``."""
    errors = sorted(validator(name).iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    where = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
    return f"at {where}: {errors[0].message}"
