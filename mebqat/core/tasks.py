"""Bitwidth tasks: the candidate sets and the seeded task sampler (official-mebqat.md §4.1, §4.3, §8.6).

A task (b_w, b_a) gives every inter weight quantizer b_w and every inter activation quantizer b_a.
Candidates follow the authors' rejection rule over b_w, b_a drawn independently from the family's
per-tensor choices C: reject (FP, a≠FP), (1, a∉{1, FP}) and (w≠1, 1). This leaves

* ``dorefa``: C = {1..8, 16, FP} → 75 pairs: (FP,FP), (1,1), (1,FP), {2..8,16} × {2..8,16,FP};
* ``sat`` and ``lsq``: C = {2..8, 16, FP} → 73 pairs: (FP,FP), {2..8,16} × {2..8,16,FP}.

Rejection sampling of independent uniform draws gives the uniform distribution over these pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .bits import FP_CODE, format_bits, parse_bits, to_code
from .registry import QUANTIZERS


class BitwidthTask(NamedTuple):
    """A bitwidth task (b_w, b_a); ``None`` is full precision."""

    w: int | None
    a: int | None

    def __str__(self) -> str:
        return f"({format_bits(self.w)},{format_bits(self.a)})"

    @property
    def is_full_precision(self) -> bool:
        return self.w is None and self.a is None

    def code(self) -> tuple[int, int]:
        return to_code(self.w), to_code(self.a)

    def label(self) -> str:
        """The task in a path or a name: (4,FP) → ``w4aFP`` (job ids, file names); :meth:`parse` reads it."""
        return f"w{format_bits(self.w)}a{format_bits(self.a)}"

    @classmethod
    def parse(cls, value: Any) -> BitwidthTask:
        """From ``"(4,FP)"``, ``"4,FP"``, ``"w4a32"``, ``(4, None)``, ``[4, "FP"]`` or a task."""
        if isinstance(value, BitwidthTask):
            return value
        if isinstance(value, str):
            text = value.strip().lower().replace(" ", "")
            if text.startswith("w") and "a" in text:
                w, a = text[1:].split("a", 1)
            else:
                parts = text.strip("()[]").split(",")
                if len(parts) != 2:
                    raise ValueError(f"cannot read bitwidth task {value!r}; write it as (b_w,b_a), e.g. (4,FP)")
                w, a = parts
            return cls(parse_bits(w), parse_bits(a))
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(parse_bits(value[0]), parse_bits(value[1]))
        raise ValueError(f"cannot read bitwidth task {value!r}; write it as (b_w,b_a), e.g. (4,FP)")


FP_TASK = BitwidthTask(None, None)
"""Full precision: (FP,FP)."""


def is_rejected(w: int | None, a: int | None) -> bool:
    """The authors' rejection rule for a pair drawn from the per-tensor choices."""
    if w is None:
        return a is not None
    if w == 1:
        return a not in (1, None)
    return a == 1


def bitwidth_candidates(family: str) -> list[BitwidthTask]:
    """The valid (b_w, b_a) pairs of a quantizer family, in a fixed order (b_w-major, FP last)."""
    choices = QUANTIZERS.get(family).bit_choices
    return [BitwidthTask(w, a) for w in choices for a in choices if not is_rejected(w, a)]


def uniform_tasks(family: str) -> list[BitwidthTask]:
    """The uniform rows (b, b) the paper's tables evaluate, FP last."""
    return [BitwidthTask(b, b) for b in QUANTIZERS.get(family).bit_choices]


def validate_task(task: Any, family: str) -> BitwidthTask:
    """Parse a task and check it is in the family's candidate set, with an error that names both."""
    parsed = BitwidthTask.parse(task)
    candidates = bitwidth_candidates(family)
    if parsed not in candidates:
        choices = QUANTIZERS.get(family).choices_text()
        raise ValueError(
            f"bitwidth task {parsed} is not a valid {family} task: b_w and b_a come from "
            f"{choices} and pairs (FP,a≠FP), (1,a∉{{1,FP}}) and (w≠1,1) are excluded "
            f"({len(candidates)} valid pairs)"
        )
    return parsed


def parse_bits_list(bits: Sequence[Any]) -> list[int | None]:
    """``[1, 2, 4, 8, "FP"]`` → [1, 2, 4, 8, None]; a repeated bitwidth is an error."""
    parsed = [parse_bits(b) for b in bits]
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"duplicate bitwidths in {[format_bits(b) for b in parsed]}")
    return parsed


class TaskSampler:
    """Draws T bitwidth tasks per step: the guaranteed tasks first, then rejection-sampled ones.

    Seeded and checkpointable (``state_dict`` / ``load_state_dict``), so a resumed run draws the same
    tasks as an uninterrupted one.
    """

    def __init__(self, family: str, tasks_per_step: int, guaranteed: Iterable[Any] = (), seed: int = 0) -> None:
        self.family = family
        self.choices: tuple[int | None, ...] = QUANTIZERS.get(family).bit_choices
        self.guaranteed = [validate_task(t, family) for t in guaranteed]
        if tasks_per_step < 1:
            raise ValueError(f"tasks_per_step must be ≥ 1, got {tasks_per_step}")
        if len(self.guaranteed) > tasks_per_step:
            raise ValueError(f"{len(self.guaranteed)} guaranteed tasks do not fit in {tasks_per_step} tasks per step")
        self.tasks_per_step = tasks_per_step
        self.rng = np.random.default_rng(seed)

    def draw(self) -> BitwidthTask:
        """One rejection-sampled task: draw b_w and b_a independently, redraw both until valid."""
        while True:
            w, a = (self.choices[i] for i in self.rng.integers(0, len(self.choices), size=2))
            if not is_rejected(w, a):
                return BitwidthTask(w, a)

    def sample(self) -> list[BitwidthTask]:
        """The tasks of one step."""
        return self.guaranteed + [self.draw() for _ in range(self.tasks_per_step - len(self.guaranteed))]

    def state_dict(self) -> dict[str, Any]:
        return {"family": self.family, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("family") != self.family:
            raise ValueError(f"sampler state is for family {state.get('family')!r}, not {self.family!r}")
        self.rng.bit_generator.state = state["rng"]


__all__ = [
    "BitwidthTask",
    "FP_CODE",
    "FP_TASK",
    "TaskSampler",
    "bitwidth_candidates",
    "is_rejected",
    "parse_bits_list",
    "uniform_tasks",
    "validate_task",
]
