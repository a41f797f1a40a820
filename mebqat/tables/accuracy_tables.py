"""Tables 2, 4 and 5: our accuracies beside the paper's, as a long CSV and as Markdown/LaTeX laid out like
the paper (rows = bitwidths, columns grouped by setup and method).

Every cell of the table's grid is present in the long CSV, filled or not: an empty accuracy means no
result (no job, or a method that cannot be evaluated at that bitwidth), never zero. ``delta`` = ours −
paper, only where both exist and ours was measured on the real dataset: a stand-in run is shown beside
the paper's number for orientation, never compared with it.
"""

from __future__ import annotations

import pandas as pd

from ..core.scales import SCALES
from .layout import SetupLayout, row_label, setups_with, table_number, table_rows
from .paper import KEY, PAPER_DASH, PAPER_LOST, PAPER_VALUE, paper_accuracies
from .render import EMPTY, Block, Document

SPEC_COLUMNS = [
    "table",
    "dataset",
    "model",
    "method",
    "bits_w",
    "bits_a",
    "shots",
    "ways",
    "accuracy",
    "ci95",
    "paper_accuracy",
    "delta",
]
EXTRA_COLUMNS = [
    "setup",
    "scale",
    "fidelity",
    "run_dataset",
    "is_standin",
    "seeds",
    "ci95_over",
    "n",
    "cell_source",
    "paper_cell",
]
TABLE_TITLES = {
    "table2": "bitwidth adaptation, test accuracy (%)",
    "table4": "bitwidth-class joint adaptation with MAML-type training, meta-test accuracy (%)",
    "table5": "bitwidth-class joint adaptation with Prototypical Networks, meta-test accuracy (%)",
}


def table_layouts(table: str, frame: pd.DataFrame) -> tuple[SetupLayout, ...]:
    """The table's setups with their columns: the paper's methods, then any other method with a result
    (``frame``: cells, or the long table)."""
    column = "method_name" if "method_name" in frame else "method"
    mine = frame[frame["table"] == table] if not frame.empty else frame
    by_setup = {setup: list(group[column].unique()) for setup, group in mine.groupby("setup")} if not mine.empty else {}
    return setups_with(table, by_setup)


def _grid(table: str, layouts: tuple[SetupLayout, ...]) -> pd.DataFrame:
    rows = []
    for layout in layouts:
        for method, title in zip(layout.methods, layout.method_titles(), strict=True):
            for bits_w, bits_a in table_rows(table):
                rows.append(
                    {
                        "table": table,
                        "dataset": layout.paper_dataset,
                        "model": layout.paper_model,
                        "method": title,
                        "bits_w": bits_w,
                        "bits_a": bits_a,
                        "shots": "" if layout.shots is None else str(layout.shots),
                        "ways": "" if layout.ways is None else str(layout.ways),
                        "setup": layout.name,
                        "method_name": method,
                    }
                )
    return pd.DataFrame(rows)


def accuracy_frame(table: str, cells: pd.DataFrame) -> pd.DataFrame:
    """The long table: every grid cell of ``table``, our result (from :func:`~mebqat.tables.cells.table_cells`)
    and the paper's, joined on (table, dataset, model, method, bits_w, bits_a, shots, ways)."""
    ours = cells[cells["table"] == table] if not cells.empty else cells
    ours = ours.rename(columns={"method": "method_name", "dataset": "run_dataset"})
    take = [
        "setup",
        "method_name",
        "bits_w",
        "bits_a",
        "accuracy",
        "ci95",
        "scale",
        "fidelity",
        "run_dataset",
        "is_standin",
        "seeds",
        "ci95_over",
        "n",
        "cell_source",
    ]
    long = _grid(table, table_layouts(table, cells)).merge(
        ours.reindex(columns=take), on=["setup", "method_name", "bits_w", "bits_a"], how="left", validate="one_to_one"
    )
    long = long.merge(paper_accuracies(table), on=KEY, how="left", validate="many_to_one")
    real = long["is_standin"].eq(False) & ~long["scale"].map(lambda s: s in SCALES and SCALES[s].rehearsal)
    long["delta"] = (long["accuracy"] - long["paper_accuracy"]).where(real)
    long["paper_cell"] = long["paper_cell"].fillna("")
    for column in ("seeds", "n"):
        long[column] = pd.to_numeric(long[column]).astype("Int64")
    for column in ("accuracy", "ci95", "paper_accuracy", "delta"):
        long[column] = pd.to_numeric(long[column]).round(4)
    return long[SPEC_COLUMNS + EXTRA_COLUMNS + ["method_name"]]


# ---------------------------------------------------------------- human-readable


def _number(value: float) -> str:
    return f"{value:.2f}"


def cell_text(row: pd.Series | dict) -> str:
    """``ours ± ci (paper, Δ±d)``; ``–`` for no result; the paper part is ``?`` where the paper's number was
    lost and ``–`` where the paper shows "-"."""
    paper = {PAPER_VALUE: None, PAPER_DASH: EMPTY, PAPER_LOST: "?"}.get(row["paper_cell"], "")
    if paper is None:
        paper = _number(row["paper_accuracy"])
    if pd.isna(row["accuracy"]):
        return f"{EMPTY} ({paper})" if row["paper_cell"] == PAPER_VALUE else EMPTY
    ours = _number(row["accuracy"])
    if pd.notna(row["ci95"]):
        ours += f" ± {_number(row['ci95'])}"
    inside = paper + (f", Δ {row['delta']:+.2f}" if pd.notna(row["delta"]) else "")
    return f"{ours} ({inside})" if inside else ours


def _blocks(table: str, long: pd.DataFrame) -> list[Block]:
    layouts = table_layouts(table, long)
    blocks_of: list[tuple[str | None, list[SetupLayout]]]
    if table == "table2":  # one block, columns grouped by setup
        blocks_of = [(None, list(layouts))]
    else:  # the paper's few-shot tables: one block per dataset/model/ways, columns grouped by shots
        keys = list(dict.fromkeys(layout.block_key for layout in layouts))
        blocks_of = [(f"{k[0]} {k[2]}-way, {k[1]}", [s for s in layouts if s.block_key == k]) for k in keys]
    lookup = {(r.setup, r.method, r.bits_w, r.bits_a): r._asdict() for r in long.itertuples(index=False)}
    blocks = []
    for title, members in blocks_of:
        block = Block(
            title=title,
            row_header="(b_w,b_a)",
            groups=[(_group_label(s), len(s.methods)) for s in members],
            columns=[t for s in members for t in s.method_titles()],
        )
        for row in table_rows(table):
            block.add_row(
                row_label(row), [cell_text(lookup[(s.name, t, *row)]) for s in members for t in s.method_titles()]
            )
        blocks.append(block)
    return blocks


def _group_label(layout: SetupLayout) -> str:
    if layout.shots is None:
        return f"{layout.paper_dataset}, {layout.paper_model}"
    return f"{layout.shots}-shot"


def rehearsal_note(long: pd.DataFrame) -> str | None:
    """``synthetic data of the real sizes`` when the table's runs are a rehearsal (None otherwise): such a
    table is laid out as the real one and compared with nothing."""
    scales = long["scale"].dropna().unique() if "scale" in long else []
    if any(SCALES[s].rehearsal for s in scales if s in SCALES):
        return "synthetic data of the real datasets' sizes, a few updates per job"
    return None


def standin_note(long: pd.DataFrame) -> str | None:
    """``digits in place of CIFAR-10/SVHN`` for the stand-in data behind a table (None if there is none)."""
    used = long[long["is_standin"].eq(True)]
    if used.empty:
        return None
    parts = []
    for dataset, group in used.groupby("run_dataset", sort=True):
        parts.append(f"{dataset} in place of {'/'.join(sorted(group['dataset'].unique()))}")
    return "; ".join(parts)


def _values(series: pd.Series) -> list[str]:
    return sorted(str(v) for v in series.dropna().unique() if str(v))


def lost_paper_note(table: str, long: pd.DataFrame) -> str | None:
    """One sentence where most of the paper's numbers of a table were lost in text extraction (Table 2: all
    but Any-Precision DNN's), so that a column of "?" does not puzzle the reader; None otherwise."""
    lost = long["paper_cell"].eq(PAPER_LOST)
    if lost.sum() <= (long["paper_cell"] != "").sum() / 2:
        return None
    known = long[long["paper_cell"].eq(PAPER_VALUE)]
    survived = (
        f"only {len(known)} survived, all in the {' / '.join(dict.fromkeys(known['method']))} column"
        if len(known)
        else "none survived"
    )
    return (
        f"The paper's Table {table_number(table)} numbers did not survive the extraction of its text ({survived}), "
        f"so almost every paper value reads ?: it is unknown, not zero "
        f"(mebqat/resources/paper_tables/README.md)."
    )


def accuracy_document(table: str, long: pd.DataFrame, jobs: int) -> Document:
    number = table_number(table)
    title = f"Table {number}: {TABLE_TITLES[table]}"
    standin = standin_note(long)
    if standin:
        title = f"Table {number} (stand-in data: {standin} — not comparable with the paper): {TABLE_TITLES[table]}"
    elif rehearsal_note(long):
        standin = rehearsal_note(long)
        title = f"Table {number} (REHEARSAL: {standin} — not results): {TABLE_TITLES[table]}"
    filled = long[long["accuracy"].notna()]
    if filled.empty:
        runs = "No runs were found for this table: every cell of ours is empty."
    else:
        seeds = filled["seeds"].astype(int)
        seed_text = str(seeds.min()) if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
        data = ", ".join(_values(filled["run_dataset"]))
        runs = (
            f"Scale: {', '.join(_values(filled['scale']))}; fidelity: {', '.join(_values(filled['fidelity']))}; "
            f"{jobs} job(s); seeds per cell: {seed_text}; data: {data}"
            + (f" (stand-in: {standin})." if standin else " (the paper's datasets).")
        )
    ci = (
        "± is the 95% interval over the test tasks of one seed, or across seeds (Student t) where a cell has several."
        if table != "table2"
        else "± is the 95% interval of metrics.json (over test batches, or images) for one seed, or across seeds "
        "(Student t) where a cell has several."
    )
    caption = [
        "Each cell: ours (paper" + (")." if standin else ", Δ = ours − paper)."),
        ci,
        f"{EMPTY}: no result (no run, or the method cannot be evaluated at that bitwidth); in parentheses, "
        f"? = the paper's number was lost in text extraction, {EMPTY} = the paper shows '-'.",
        "A dedicated (one model per bitwidth) column takes each row from the model trained at that bitwidth;"
        " the (FP,FP) row of a +QAT column is the plain FP model."
        if table != "table2"
        else "A QAT column takes each row from the model trained at that bitwidth.",
        runs,
    ]
    notes = (
        []
        if not standin
        else [
            "A rehearsal checks that the paper's jobs run (memory, time, resume), not what they reach: its "
            "accuracies mean nothing, and no difference with the paper is computed."
            if rehearsal_note(long)
            else "Stand-in runs are not reproductions: the paper's values are shown for orientation only and no "
            "difference is computed."
        ]
    )
    lost = lost_paper_note(table, long)
    if lost:
        notes.append(lost)
    return Document(title=title, caption=caption, blocks=_blocks(table, long), label=table, notes=notes)
