"""Validating the workflow configuration (config/*.yaml) against workflow/schemas/config.schema.yaml,
whose registry-owned lists (scales, fidelities) are filled from the registries, before any job
starts: an unknown key or a wrong value is one error naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from ..core.schemas import load_schema, non_finite


class WorkflowConfigError(ValueError):
    pass


def validate_workflow_config(config: Mapping[str, Any], schema_path: str | Path) -> None:
    validator = jsonschema.Draft202012Validator(load_schema(Path(schema_path)))
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise WorkflowConfigError(
            f"Error validating config: at {where}: {errors[0].message} (see config/README.md for every key)"
        )
    found = non_finite(dict(config))
    if found:
        raise WorkflowConfigError(
            f"Error validating config: at {'.'.join(map(str, found[0]))}: {found[1]} is not a finite number"
        )
