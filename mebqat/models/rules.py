"""First/last-layer precision rules: how one task (b_w, b_a) becomes per-layer bitwidths (official-mebqat.md §1).

Every quantizer has a role: the ``first`` weight (the stem), the ``last`` weight (the classifier), the
``last`` activation quantizer, and ``inter`` for everything else. Inter quantizers take the task's b_w
or b_a. First/last quantizers follow a rule value:

* ``"same"``: follow the task (b_w for weights, b_a for the last activation);
* ``"fp"``: always full precision;
* an int: that bitwidth for every quantized task (SAT MobileNetV2: 8-bit first and last weights).

FP override: the (FP,FP) task makes every quantizer FP, whatever the rules say.

Tasks may be Python (``BitwidthTask`` / a pair) or an integer tensor of shape [2] (FP = 32), so a batch
of tasks resolves inside ``vmap`` with tensor operations only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch

from ..core.bits import FP_CODE, check_bits
from ..core.tasks import BitwidthTask

RuleValue = str | int
ROLES = ("first", "inter", "last")


class LayerBits(NamedTuple):
    """Per-role bitwidths of one task (Python values or 0-dim tensors)."""

    w_first: Any
    w_inter: Any
    w_last: Any
    a_inter: Any
    a_last: Any

    def weight(self, role: str) -> Any:
        return {"first": self.w_first, "inter": self.w_inter, "last": self.w_last}[role]

    def activation(self, role: str) -> Any:
        return {"inter": self.a_inter, "last": self.a_last}[role]


def _check_rule(name: str, value: RuleValue) -> RuleValue:
    if isinstance(value, str) and value in ("same", "fp"):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < FP_CODE:
        return value
    raise ValueError(f"precision rule {name} must be 'same', 'fp' or a bitwidth 1..31, got {value!r}")


@dataclass(frozen=True)
class PrecisionRules:
    first_weight: RuleValue = "same"
    last_weight: RuleValue = "same"
    last_activation: RuleValue = "same"

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            _check_rule(name, value)

    @classmethod
    def coerce(cls, value: PrecisionRules | dict | None, default: PrecisionRules) -> PrecisionRules:
        if value is None:
            return default
        if isinstance(value, PrecisionRules):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"first_weight", "last_weight", "last_activation"}
            if unknown:
                raise ValueError(f"unknown precision rule keys {sorted(unknown)}")
            return cls(**value)
        raise TypeError(f"precision rules must be PrecisionRules or a dict, got {type(value).__name__}")

    def describe(self) -> dict[str, str]:
        def text(value: RuleValue, follows: str) -> str:
            return f"follows {follows}" if value == "same" else "FP" if value == "fp" else f"{value}-bit"

        return {
            "first weight": text(self.first_weight, "b_w"),
            "last weight": text(self.last_weight, "b_w"),
            "last activation": text(self.last_activation, "b_a"),
            "(FP,FP) task": "everything FP",
        }

    def always_fp(self, kind: str, role: str) -> bool:
        """Whether a quantizer of this kind ("weight"/"activation") and role is FP for every task."""
        rule = {
            ("weight", "first"): self.first_weight,
            ("weight", "last"): self.last_weight,
            ("activation", "last"): self.last_activation,
        }.get((kind, role), "same")
        return rule == "fp"

    def resolve(self, task: Any) -> LayerBits:
        if isinstance(task, torch.Tensor):
            return self._resolve_tensor(task)
        w, a = BitwidthTask.parse(task)
        if w is None and a is None:
            return LayerBits(None, None, None, None, None)
        w = check_bits(w, "task")
        a = check_bits(a, "task")

        def pick(rule: RuleValue, follow: int | None) -> int | None:
            if isinstance(rule, int):
                return rule
            return follow if rule == "same" else None  # "fp"

        return LayerBits(pick(self.first_weight, w), w, pick(self.last_weight, w), a, pick(self.last_activation, a))

    def _resolve_tensor(self, task: torch.Tensor) -> LayerBits:
        if task.shape[-1] != 2:
            raise ValueError(f"a tensor task has shape [2] (b_w, b_a codes), got {tuple(task.shape)}")
        w, a = task[..., 0], task[..., 1]
        full_precision = (w >= FP_CODE) & (a >= FP_CODE)
        fp = torch.full_like(w, FP_CODE)

        def pick(rule: RuleValue, follow: torch.Tensor) -> torch.Tensor:
            value = torch.full_like(w, rule) if isinstance(rule, int) else follow if rule == "same" else fp
            return torch.where(full_precision, fp, value)

        return LayerBits(pick(self.first_weight, w), w, pick(self.last_weight, w), a, pick(self.last_activation, a))


ALL_FOLLOW = PrecisionRules()
FIRST_LAST_FP = PrecisionRules("fp", "fp", "fp")
SAT_MOBILENET = PrecisionRules(8, 8, "same")
