"""The workflow report's own pages: its start-page summary and the per-job table (what ``mebqat tables report``
writes; the workflow's ``report_pages`` rule).

Snakemake's report opens on the workflow description (an .rst file, rendered with Jinja and docutils) beside
the rule graph, and its statistics are per rule. So the run is summarised here from its own files, never typed
by hand:

- ``summary.rst``: what was run (scale, fidelity, seeds, data and whether they are stand-ins, the number of jobs
  per table and their states, from every job's ``metrics.json`` and ``job_status.json``), how many claims hold,
  fail or were not measured (from ``claims.csv``), and where to look (links to the report's categories and
  inline pages, the MLflow store). The Snakefile makes it the report's description once it exists.
- ``jobs.html``: one row per job (its name, table, setup, method, task, seed, wall times and state), read
  from each run directory's ``metrics.json``, ``train_summary.json`` and ``job_status.json``.

Only JSON is read (no torch): the layer stays importable without the training stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.rundir_layout import RunFiles
from ..core.scales import SCALES
from .claims import FAILS, HOLDS, NOT_MEASURED
from .layout import table_number
from .render import Block, Document, to_html

JOB_COLUMNS = [
    "job",
    "table",
    "setup",
    "method",
    "task",
    "seed",
    "scale",
    "fidelity",
    "dataset",
    "stands_for",
    "is_standin",
    "updates",
    "train_s",
    "evaluate_s",
    "wall_s",
    "started_ms",
    "ended_ms",
    "status",
]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _task(tasks: Sequence[str]) -> str:
    """The trained bitwidth task of a one-bitwidth job, or how many a bitwidth-adaptive job trains on."""
    if not tasks:
        return ""
    return tasks[0] if len(tasks) == 1 else f"{len(tasks)} bitwidths"


def job_name(run_dir: Path, runs_root: Path | None) -> str:
    """A job's name in the reports: its run directory relative to the runs directory (else as given)."""
    if runs_root is not None:
        try:
            return run_dir.resolve().relative_to(runs_root.resolve()).as_posix()
        except ValueError:
            pass
    return run_dir.as_posix()


def job_frame(metrics_files: Iterable[str | Path], runs_root: str | Path | None = None) -> pd.DataFrame:
    """One row per job (run directory of a ``metrics.json``): identity, budget, wall times and state."""
    root = None if runs_root is None else Path(runs_root)
    rows = []
    for metrics_path in metrics_files:
        metrics_path = Path(metrics_path)
        run = RunFiles(metrics_path.parent)
        metrics, summary, status = _read(metrics_path), _read(run.summary), _read(run.status)
        ident, costs = metrics.get("identity", {}), metrics.get("costs", {})
        started, ended = status.get("started_ms"), status.get("ended_ms")
        rows.append(
            {
                "job": job_name(run.root, root),
                "table": ident.get("table", ""),
                "setup": ident.get("setup", ""),
                "method": ident.get("method_title") or ident.get("method", ""),
                "task": _task(ident.get("train_tasks") or summary.get("trained_tasks") or []),
                "seed": ident.get("seed"),
                "scale": ident.get("scale", ""),
                "fidelity": ident.get("fidelity", ""),
                "dataset": ident.get("dataset", ""),
                "stands_for": ident.get("stands_for") or ident.get("dataset", ""),
                "is_standin": bool(ident.get("is_standin")),
                "updates": costs.get("updates", summary.get("updates")),
                "train_s": costs.get("train_wall_time_s", summary.get("train_wall_time_s")),
                "evaluate_s": costs.get("eval_wall_time_s"),
                "wall_s": (ended - started) / 1000 if isinstance(started, int) and isinstance(ended, int) else None,
                "started_ms": started,
                "ended_ms": ended,
                "status": status.get("state") or ("finished" if metrics else "unknown"),
            }
        )
    frame = pd.DataFrame(rows, columns=JOB_COLUMNS)
    return frame.sort_values(["table", "setup", "method", "task", "seed", "job"], kind="stable", ignore_index=True)


def _seconds(value: Any) -> str:
    if value is None or pd.isna(value):
        return "–"
    value = float(value)
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _span(jobs: pd.DataFrame) -> float | None:
    started, ended = jobs["started_ms"].dropna(), jobs["ended_ms"].dropna()
    return (ended.max() - started.min()) / 1000 if len(started) and len(ended) else None


def jobs_document(jobs: pd.DataFrame) -> Document:
    """The per-job table: Snakemake's own statistics are per rule, and every training job is one rule."""
    block = Block(
        title=None,
        row_header="job",
        groups=[("", 10)],
        columns=["table", "setup", "method", "task", "seed", "updates", "train", "evaluate", "job wall time", "status"],
    )
    for row in jobs.itertuples(index=False):
        block.add_row(
            row.job,
            [
                row.table,
                row.setup,
                row.method,
                row.task,
                "" if row.seed is None or pd.isna(row.seed) else str(int(row.seed)),
                "" if row.updates is None or pd.isna(row.updates) else f"{int(row.updates):,}",
                _seconds(row.train_s),
                _seconds(row.evaluate_s),
                _seconds(row.wall_s),
                row.status,
            ],
        )
    total = jobs["wall_s"].dropna().sum()
    slowest = jobs.dropna(subset=["wall_s"]).nlargest(3, "wall_s")
    caption = [
        f"{len(jobs)} training jobs, one per table cell that needs its own model (the workflow's rule "
        f"'job'); {_states(jobs)}.",
        f"Job wall time: from the job's start to its end (job_status.json), start-up included; together "
        f"{_seconds(total)} of job time"
        + (f", {_seconds(_span(jobs))} from the first start to the last end" if _span(jobs) is not None else "")
        + ". "
        "Train and evaluate: the training loop's and the evaluation's own wall times (metrics.json). "
        "Task: the bitwidth a one-bitwidth job trains at, or how many bitwidth settings a bitwidth-adaptive "
        "job samples from.",
        "Slowest: " + "; ".join(f"{r.job} ({_seconds(r.wall_s)})" for r in slowest.itertuples()) + "."
        if len(slowest)
        else "No job has recorded its times yet.",
    ]
    notes = [
        "Each job's directory (results/runs/<job>/) holds its config.yaml, train.log, history.jsonl, "
        "train_summary.json, metrics.json and job_status.json; its log is results/logs/jobs/<job>.log."
    ]
    return Document(
        title="Jobs: every training job, its time and state", caption=caption, blocks=[block], label="jobs", notes=notes
    )


def _states(jobs: pd.DataFrame) -> str:
    counts = jobs["status"].value_counts()
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "none"


# ---------------------------------------------------------------- the start page


def _rst_escape(text: str) -> str:
    """Plain text for reStructuredText (and for the Jinja pass Snakemake makes over the description first)."""
    text = str(text)
    for ch in "\\*`_|":
        text = text.replace(ch, "\\" + ch)
    return text.replace("{{", "{ {").replace("{%", "{ %").replace("{#", "{ #")


def _values(series: pd.Series) -> str:
    return ", ".join(sorted({str(v) for v in series.dropna() if str(v) != ""})) or "–"


def _data_line(jobs: pd.DataFrame) -> str:
    parts = []
    for (dataset, stands_for, standin), _ in jobs.groupby(["dataset", "stands_for", "is_standin"], sort=True):
        parts.append(f"{dataset} in place of {stands_for}" if standin else dataset)
    return "; ".join(parts) or "–"


def _claim_rows(verdicts: pd.DataFrame) -> list[str]:
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 61 13 13 13",
        "",
        "   * - claim",
        "     - holds",
        "     - fails",
        "     - not measured",
    ]
    for claim, rows in verdicts.groupby("claim", sort=False):
        counts = rows["verdict"].value_counts()
        lines += [f"   * - {_rst_escape(claim)}"] + [f"     - {counts.get(v, 0)}" for v in (HOLDS, FAILS, NOT_MEASURED)]
    return lines


def summary_rst(
    jobs: pd.DataFrame, verdicts: pd.DataFrame | None, tables: Sequence[str], mlflow_uri: str | None, results: str
) -> str:
    """The report's start page (reStructuredText). Links name the report's categories (Tables, Claims,
    Figures, Jobs) and its inline pages (``table2.html``, ``claims.html``, ``jobs.html``): Snakemake defines a
    link target for each."""
    scale, fidelity = _values(jobs["scale"]), _values(jobs["fidelity"])
    standin = bool(jobs["is_standin"].any())
    title = f"MEBQAT reproduction: {scale} scale, {fidelity} fidelity"
    lines = [title, "=" * len(title), ""]
    rehearsal = any(SCALES[s].rehearsal for s in jobs["scale"].dropna().unique() if s in SCALES)
    if rehearsal:
        lines += [
            ".. warning::",
            "",
            "   **Rehearsal**: the paper's jobs on synthetic data of the real datasets' sizes, a few updates "
            "each, killed after their first epoch and resumed. What it measured (memory against each job's "
            "request, time per update, data loading, checkpoint size, exact resume) is under `Rehearsal`_ "
            "(``rehearsal.html``); its accuracies mean nothing and no claim is judged.",
            "",
        ]
    if standin:
        lines += [
            ".. warning::",
            "",
            "   **Stand-in data**: these runs use offline stand-ins, not the paper's datasets; their numbers "
            "show the harness working end to end and are never compared with the paper's.",
            "",
        ]
    per_table = ", ".join(f"Table {table_number(t)}: {n}" for t, n in jobs.groupby("table").size().items())
    seeds = _values(jobs["seed"].map(lambda s: "" if s is None or pd.isna(s) else str(int(s))))
    total, span = jobs["wall_s"].dropna().sum(), _span(jobs)
    lines += [
        "**What was run**",
        "",
        f"- Scale **{_rst_escape(scale)}**, fidelity **{_rst_escape(fidelity)}**, seeds {seeds}.",
        f"- Data: {_rst_escape(_data_line(jobs))}" + (" (stand-ins)." if standin else " (the paper's datasets)."),
        f"- **{len(jobs)} training jobs** ({per_table or 'none'}): {_states(jobs)}; "
        f"{_seconds(total)} of job time"
        + (f", {_seconds(span)} from first start to last end" if span else "")
        + ". Every job's time and state: `Jobs`_ (``jobs.html``).",
        "",
    ]
    if verdicts is not None and len(verdicts) and not rehearsal:
        counts = verdicts["verdict"].value_counts()
        lines += [
            "**Do the paper's claims hold?**",
            "",
            f"**{counts.get(HOLDS, 0)} of {len(verdicts)} checks hold, {counts.get(FAILS, 0)} fail, "
            f"{counts.get(NOT_MEASURED, 0)} not measured** (one check per claim and setup). A check holds when "
            f"the 95% interval of its statistic clears the paper-derived threshold at every bitwidth row it "
            f"names. Each verdict with its reason: `Claims`_ (``claims.html``).",
            "",
        ]
        lines += _claim_rows(verdicts) + [""]
    pages = ", ".join(f"`{t}.html`_" for t in tables)
    lines += [
        "**Where to look**",
        "",
        f"- `Tables`_: {pages or 'none'}, shown in the report (click a name, then the eye): ours beside the "
        f"paper's, laid out like the paper. The same tables as files: ``{results}/tables/"
        f"table*.{{csv,md,tex}}``.",
        *(
            [f"- `Rehearsal`_: ``rehearsal.html``; the same as ``{results}/rehearsal.{{md,csv}}``."]
            if rehearsal
            else []
        ),
        "- `Claims`_: ``claims.html``; the same as ``claims.csv`` / ``claims.md``.",
        "- `Figures`_: accuracy against bitwidth per setup, ours beside the paper's; Table 3's costs.",
        "- `Jobs`_: ``jobs.html``, every job by name (the Statistics panel groups them per rule).",
        f"- MLflow store: ``{mlflow_uri or '–'}``; browse it with ``mebqat track ui``"
        + ("" if not mlflow_uri or not mlflow_uri.startswith("sqlite:") else f" (``--uri {mlflow_uri}``)")
        + ", one experiment per table.",
        "",
    ]
    return "\n".join(lines)


def write_report_pages(
    metrics_files: Iterable[str | Path],
    out: str | Path,
    claims: str | Path | None = None,
    tables: Sequence[str] = (),
    mlflow_uri: str | None = None,
    runs_root: str | Path | None = None,
    results: str | None = None,
) -> list[Path]:
    """Write ``summary.rst`` and ``jobs.html`` under ``out``; return their paths."""
    from .output import write_text

    jobs = job_frame(metrics_files, runs_root)
    verdicts = pd.read_csv(claims) if claims is not None else None
    out = Path(out)
    results = results or (out.parent.as_posix())
    doc = jobs_document(jobs)
    return [
        write_text(out / "summary.rst", summary_rst(jobs, verdicts, tables, mlflow_uri, results)),
        write_text(out / "jobs.html", to_html(doc)),
    ]
