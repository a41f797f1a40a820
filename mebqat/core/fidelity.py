"""Fidelity switches: each quirk of the authors' code is its own switch (docs/fidelity.md), declared once
here.

``official`` turns every switch on (behave as the released code does); ``corrected`` turns every switch
off. A job may set individual switches on top of either preset; every result records the full set of the
switches of its table. Code reads them through one typed object, :class:`Fidelity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Switch:
    name: str
    tables: tuple[str, ...]
    official: str
    corrected: str


SWITCHES: dict[str, Switch] = {
    s.name: s
    for s in (
        Switch(
            "select_on_test_split",
            ("table2",),
            "per-epoch 'validation' and checkpoint selection use the test split (official §4.7)",
            "a held-out validation split from the training data",
        ),
        Switch(
            "per_task_teacher",
            ("table2",),
            "a separate FP teacher forward per quantized task, in train mode (official §8.8)",
            "one teacher pass per step (the FP task's own logits when it is among the tasks)",
        ),
        Switch(
            "per_batch_accuracy",
            ("table2",),
            "accuracy = unweighted mean of per-batch accuracies (official §5.1)",
            "accuracy = fraction of correct images",
        ),
        Switch(
            "shared_lsq_steps",
            ("table4", "table5"),
            "one LSQ step per layer shared by every bitwidth (official §2.2, §8.1)",
            "one step per layer and bitwidth",
        ),
        Switch(
            "frozen_activation_steps",
            ("table4", "table5"),
            "LSQ activation steps are never learned (official §2.3)",
            "activation steps are learned like weight steps",
        ),
        Switch(
            "frozen_steps_in_inner_loops",
            ("table4",),
            "LSQ steps do not move in MAML inner loops and meta-test fine-tuning (official §2.3)",
            "steps adapt with the other inner-loop parameters",
        ),
        Switch(
            "lsq_levels_2b",
            ("table4", "table5"),
            "post-ReLU LSQ activations use 2^b + 1 levels, p = 2^b (official §8.2)",
            "p = 2^b − 1",
        ),
        Switch(
            "fp_baseline_random_steps",
            ("table4", "table5"),
            "FP-trained baselines quantized at test time boot s_w from a fresh random init (official §8.3)",
            "s_w is booted from the trained weights",
        ),
    )
}

PRESETS: tuple[str, ...] = ("official", "corrected")
DEFAULT_PRESET = "official"


@dataclass(frozen=True)
class Fidelity:
    """Every switch, on (the authors' behaviour) by default; a job's switches are read with :meth:`of`."""

    select_on_test_split: bool = True
    per_task_teacher: bool = True
    per_batch_accuracy: bool = True
    shared_lsq_steps: bool = True
    frozen_activation_steps: bool = True
    frozen_steps_in_inner_loops: bool = True
    lsq_levels_2b: bool = True
    fp_baseline_random_steps: bool = True

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Fidelity:
        """The switches of a resolved job configuration (those of other tables keep their official value)."""
        return cls(**dict(config["fidelity_switches"]))


if {f.name for f in fields(Fidelity)} != set(SWITCHES):  # one list of switches, checked at import
    raise AssertionError("Fidelity's fields and SWITCHES disagree")


def resolve_switches(preset: str, overrides: Mapping[str, Any] | None, table: str) -> dict[str, bool]:
    """The switches that apply to ``table``, set by the preset, with individual overrides applied
    (an unknown switch, or one that does not apply to the table, is an error)."""
    if preset not in PRESETS:
        raise ValueError(f"fidelity must be one of {', '.join(PRESETS)}, got {preset!r}")
    applicable = [name for name, switch in SWITCHES.items() if table in switch.tables]
    switches = {name: preset == "official" for name in applicable}
    for name, value in (overrides or {}).items():
        if name not in SWITCHES:
            raise ValueError(f"unknown fidelity switch {name!r}; known: {', '.join(SWITCHES)}")
        if name not in applicable:
            raise ValueError(
                f"fidelity switch {name!r} does not apply to {table} (it applies to {', '.join(SWITCHES[name].tables)})"
            )
        if not isinstance(value, bool):
            raise ValueError(f"fidelity switch {name} must be true or false, got {value!r}")
        switches[name] = value
    return switches
