"""Build the requested tables and figures from the runs' metrics files: what ``mebqat tables build`` does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from .accuracy_tables import accuracy_document, accuracy_frame, table_layouts
from .cells import table_cells
from .collect import collect, combine_seeds, single_configuration
from .cost_table import cost_document, cost_frame
from .figures import accuracy_figure, accuracy_figure_name, cost_figure
from .layout import ACCURACY_TABLES, ALL_TABLES, normalize_table
from .output import write_csv, write_figure, write_text
from .render import Document, to_html, to_latex, to_markdown

COST_FIGURE = "costs_table3"


def _write_table(out: Path, name: str, long, doc: Document, notes_first: bool = False) -> list[Path]:
    """``name``.csv, .md, .tex and .html (the self-contained page the workflow's report shows inline)."""
    files = f"The same table as files: {name}.csv (every cell, long form), {name}.md, {name}.tex."
    return [
        write_csv(out / f"{name}.csv", long),
        write_text(out / f"{name}.md", to_markdown(doc)),
        write_text(out / f"{name}.tex", to_latex(doc)),
        write_text(out / f"{name}.html", to_html(doc, notes_first=notes_first, files=files)),
    ]


def build(
    runs: Iterable[str | Path],
    out: str | Path,
    figures: str | Path | None = None,
    tables: Sequence[str | int] = ALL_TABLES,
    scale: str | None = None,
    fidelity: str | None = None,
    figure_formats: Sequence[str] = ("png",),
) -> list[Path]:
    """Write ``table{N}.{csv,md,tex,html}`` under ``out`` (and the figures under ``figures``) for each requested
    table; return the written paths. Missing runs leave cells empty; a table with no run is still laid out."""
    wanted = [normalize_table(t) for t in tables]
    frame = collect(runs, scale=scale, fidelity=fidelity)
    for table in wanted:
        single_configuration(frame, "table2" if table == "table3" else table)
    cells = table_cells(combine_seeds(frame))
    out = Path(out)
    written: list[Path] = []
    for table in (t for t in ALL_TABLES if t in wanted):
        if table in ACCURACY_TABLES:
            long = accuracy_frame(table, cells)
            jobs = frame.loc[frame["table"] == table, "path"].nunique()
            written += _write_table(
                out, table, long.drop(columns="method_name"), accuracy_document(table, long, jobs), notes_first=True
            )
            if figures is not None:
                for layout in table_layouts(table, long):
                    figure = accuracy_figure(layout, long)
                    written += [
                        write_figure(Path(figures) / f"{accuracy_figure_name(layout)}.{fmt}", figure)
                        for fmt in figure_formats
                    ]
        else:
            long = cost_frame(frame)
            written += _write_table(out, table, long, cost_document(long, frame))
            if figures is not None:
                figure = cost_figure(frame)
                written += [write_figure(Path(figures) / f"{COST_FIGURE}.{fmt}", figure) for fmt in figure_formats]
    return written


def build_claims(
    runs: Iterable[str | Path], out: str | Path, scale: str | None = None, fidelity: str | None = None
) -> list[Path]:
    """Check the paper's claims on the runs: write ``claims.csv``, ``claims.md`` and ``claims.html`` (the
    report's inline page) under ``out``."""
    from .claims import check_claims, claims_document

    frame = collect(runs, scale=scale, fidelity=fidelity)
    for table in ACCURACY_TABLES:
        single_configuration(frame, table)
    verdicts = check_claims(frame)
    out = Path(out)
    doc = claims_document(verdicts)
    files = "The same verdicts as files: claims.csv (one row per check, every column), claims.md."
    return [
        write_csv(out / "claims.csv", verdicts),
        write_text(out / "claims.md", to_markdown(doc)),
        write_text(out / "claims.html", to_html(doc, files=files)),
    ]
