"""What each accuracy table looks like, read from the setup presets (``mebqat/resources/setups``): its
setups in order, each setup's paper names and methods, and the bitwidth rows it reports.

Nothing here is typed in twice: the rows are the setups' ``evaluate.tasks`` (uniform (b, b) rows, FP
last), the columns the setups' ``methods`` with the method registry's titles.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..core.bits import format_bits
from ..core.config import load_table_setups
from ..core.registry import METHODS
from ..core.tasks import BitwidthTask

ACCURACY_TABLES = ("table2", "table4", "table5")
ALL_TABLES = ("table2", "table3", "table4", "table5")


def is_dedicated(method: str) -> bool:
    """A method that trains one network per bitwidth: each job fills only its own row (official §5.1)."""
    return METHODS.get(method).per_bitwidth


def plain_of_dedicated() -> dict[str, str]:
    """Per-bitwidth methods whose (FP,FP) row is a plain method's network (FOMAML+QAT → FOMAML; the paper's
    values are equal, official §7.2–7.3)."""
    return {info.name: info.fp_row_from for info in METHODS if info.fp_row_from}


def method_title(method: str) -> str:
    return METHODS.get(method).title


@dataclass(frozen=True)
class SetupLayout:
    name: str
    table: str
    title: str
    paper_dataset: str
    paper_model: str
    ways: int | None
    shots: int | None
    methods: tuple[str, ...]
    rows: tuple[tuple[str, str], ...]
    """The (bits_w, bits_a) rows this setup is evaluated at, as the paper CSVs write them ("4", "FP")."""
    model: str
    model_options: tuple[tuple[str, object], ...]
    quantizer: str

    @property
    def block_key(self) -> tuple[str, str, int | None]:
        """Setups that share a block of the paper's table (few-shot: dataset, model and ways)."""
        return (self.paper_dataset, self.paper_model, self.ways)

    def method_titles(self) -> tuple[str, ...]:
        return tuple(method_title(m) for m in self.methods)


def normalize_table(table: str | int) -> str:
    """``2``, ``"2"`` or ``"table2"`` → ``"table2"``."""
    name = str(table).strip().lower()
    name = name if name.startswith("table") else f"table{name}"
    if name not in ALL_TABLES:
        raise ValueError(f"unknown table {table!r}; the paper's tables are {', '.join(t[5:] for t in ALL_TABLES)}")
    return name


def bits_label(bits: object) -> str:
    """A bitwidth as the tables write it: an int or ``"FP"`` (metrics.json) → ``"4"`` / ``"FP"``."""
    if bits is None or str(bits).upper() in ("FP", "32"):
        return "FP"
    value = int(str(bits))
    if value < 1:
        raise ValueError(f"bitwidth {bits!r} is not valid")
    return str(value)


def bits_rank(label: str) -> int:
    """Sort key of a bitwidth label: 1 … 16, then FP."""
    return 32 if label == "FP" else int(label)


def row_label(row: tuple[str, str]) -> str:
    return f"({row[0]},{row[1]})"


def task_row(task: str | BitwidthTask) -> tuple[str, str]:
    """A bitwidth task (``"(4,4)"``) as a table row key (``("4", "4")``)."""
    parsed = BitwidthTask.parse(task)
    return format_bits(parsed.w), format_bits(parsed.a)


@functools.cache
def table_setups(table: str) -> tuple[SetupLayout, ...]:
    """The setups of an accuracy table, in the order of its preset file."""
    if table not in ACCURACY_TABLES:
        raise ValueError(f"{table} is not an accuracy table ({', '.join(ACCURACY_TABLES)})")
    presets = load_table_setups(table)
    default_tasks = presets.get("defaults", {}).get("evaluate", {}).get("tasks")
    default_model = presets.get("defaults", {}).get("model", {})
    layouts = []
    for name, setup in presets["setups"].items():
        base = setup.get("base", {})
        tasks = base.get("evaluate", {}).get("tasks", default_tasks)
        if not tasks:
            raise ValueError(f"setup {name!r} of {table} names no evaluation bitwidths")
        model = {**default_model, **base.get("model", {})}
        options = dict(model.get("options", {}))
        paper = setup["paper"]
        rows = sorted({task_row(t) for t in tasks}, key=lambda r: (bits_rank(r[0]), bits_rank(r[1])))
        layouts.append(
            SetupLayout(
                name=name,
                table=table,
                title=setup.get("title", name),
                paper_dataset=paper["dataset"],
                paper_model=paper["model"],
                ways=paper.get("ways"),
                shots=paper.get("shots"),
                methods=tuple(setup["methods"]),
                rows=tuple(rows),
                model=model["name"],
                model_options=tuple(sorted(options.items())),
                quantizer=model["scheme"],
            )
        )
    return tuple(layouts)


def setups_with(table: str, methods_by_setup: Mapping[str, Iterable[str]]) -> tuple[SetupLayout, ...]:
    """The table's setups, each with the paper's methods first and then any other registered method that
    ``methods_by_setup`` names for it (a new method compared against the paper's columns)."""
    layouts = []
    for layout in table_setups(table):
        extra = sorted(set(methods_by_setup.get(layout.name, ())) - set(layout.methods))
        layouts.append(replace(layout, methods=layout.methods + tuple(extra)) if extra else layout)
    return tuple(layouts)


def find_layout(table: str, setup: str) -> SetupLayout:
    for layout in table_setups(table):
        if layout.name == setup:
            return layout
    raise ValueError(
        f"setup {setup!r} is not part of {table}; its setups: {', '.join(s.name for s in table_setups(table))}"
    )


def table_rows(table: str) -> tuple[tuple[str, str], ...]:
    """Every bitwidth row of a table: the union of its setups' rows (a setup that lacks one shows "–")."""
    rows = {row for layout in table_setups(table) for row in layout.rows}
    return tuple(sorted(rows, key=lambda r: (bits_rank(r[0]), bits_rank(r[1]))))


def table_number(table: str) -> str:
    return table.removeprefix("table")
