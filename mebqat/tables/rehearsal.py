"""The rehearsal's report (``<results>/rehearsal.{md,html,csv}``): one row per job from
the ``rehearsal/summary.json`` that ``mebqat rehearse`` leaves in its run directory, a summary per setup and
per dataset, and every problem named: a job whose peak resident memory exceeds its request, whose resumed
state differs from its state at the kill (or that was not killed), or that waits longer for a training
batch than its update takes. Torch-free: it reads JSON only."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from .output import write_csv, write_text
from .render import EMPTY, Block, Document, to_html, to_markdown
from .report import job_name

SUMMARY = Path("rehearsal") / "summary.json"
COLUMNS = [
    "job",
    "table",
    "setup",
    "method",
    "train_task",
    "dataset",
    "peak_rss_mb",
    "mem_mb_request",
    "s_per_update",
    "batch_wait_s",
    "load_to_step",
    "data_open_s",
    "data_bytes",
    "test_data_bytes",
    "checkpoint_mb",
    "killed",
    "resume_same_state",
    "state_differs_in",
    "wall_s",
]


class RehearsalError(ValueError):
    """A run directory without the rehearsal's summary."""


def rehearsal_frame(metrics_files: Iterable[str | Path], runs_root: str | Path | None = None) -> pd.DataFrame:
    """One row per job: the rehearsal summary beside each ``metrics.json``."""
    root = None if runs_root is None else Path(runs_root)
    rows = []
    for metrics in metrics_files:
        run_dir = Path(metrics).parent
        path = run_dir / SUMMARY
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise RehearsalError(
                f"{path}: no rehearsal summary ({type(err).__name__}); run the job with `mebqat rehearse` "
                f"(the workflow does at scale rehearsal)"
            ) from None
        job = data["job"]
        rows.append(
            {
                "job": job_name(run_dir, root),
                "table": job["table"],
                "setup": job["setup"],
                "method": job["method"],
                "train_task": job.get("train_task") or "",
                "dataset": data["dataset"],
                "peak_rss_mb": data["peak_rss_mb"],
                "mem_mb_request": data["mem_mb_request"],
                "s_per_update": data.get("s_per_update"),
                "batch_wait_s": data.get("batch_wait_s"),
                "load_to_step": data.get("load_to_step"),
                "data_open_s": data.get("data_open_s"),
                "data_bytes": data.get("data_bytes"),
                "test_data_bytes": data.get("test_data_bytes"),
                "checkpoint_mb": sum(data.get("checkpoint_bytes", {}).values()) / 2**20,
                "killed": bool(data.get("killed")),
                "resume_same_state": bool(data.get("resume_same_state")),
                "state_differs_in": " ".join(data.get("state_differs_in", [])),
                "wall_s": sum(e.get("wall_s", 0.0) for e in data.get("executions", {}).values()),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("job", kind="stable").reset_index(drop=True)


def problems(frame: pd.DataFrame) -> list[str]:
    """Every job the rehearsal found wanting, one line each, worst kind first."""
    found = []
    for row in frame.itertuples(index=False):
        if row.peak_rss_mb > row.mem_mb_request:
            found.append(
                f"{row.job}: peak memory {row.peak_rss_mb:,.0f} MB exceeds its request of {row.mem_mb_request:,} MB "
                f"(raise mem_mb_per_job, or the job is killed by the cluster)"
            )
    for row in frame.itertuples(index=False):
        if not row.killed:
            found.append(f"{row.job}: was not killed by the rehearsal (resumed from an earlier interrupted run)")
        elif not row.resume_same_state:
            found.append(
                f"{row.job}: the resumed state differs from the state at the kill in: "
                f"{row.state_differs_in or 'the digest is missing'}"
            )
    for row in frame.itertuples(index=False):
        if row.load_to_step is not None and not pd.isna(row.load_to_step) and row.load_to_step > 1:
            found.append(
                f"{row.job}: waits {row.batch_wait_s:.3f} s for a training batch, longer than its update "
                f"({row.s_per_update:.3f} s)"
            )
    return found


def _num(value: Any, fmt: str) -> str:
    return EMPTY if value is None or pd.isna(value) else format(value, fmt)


def _mb(nbytes: Any) -> str:
    return EMPTY if nbytes is None or pd.isna(nbytes) else f"{nbytes / 2**20:,.0f}"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores"


def rehearsal_document(frame: pd.DataFrame, machine: str | None = None) -> Document:
    machine = machine or _machine()
    setups = Block(
        title="Per setup",
        row_header="setup",
        groups=[("", 8)],
        columns=[
            "jobs",
            "peak MB (max)",
            "request MB",
            "s/update (max)",
            "load/step (max)",
            "data open s (max)",
            "checkpoint MB (max)",
            "resumed exactly",
        ],
    )
    for setup, group in frame.groupby("setup", sort=True):
        setups.add_row(
            str(setup),
            [
                str(len(group)),
                _num(group["peak_rss_mb"].max(), ",.0f"),
                _num(group["mem_mb_request"].max(), ","),
                _num(group["s_per_update"].max(), ".3f"),
                _num(group["load_to_step"].max(), ".3f"),
                _num(group["data_open_s"].max(), ".1f"),
                _num(group["checkpoint_mb"].max(), ".1f"),
                f"{int((group['killed'] & group['resume_same_state']).sum())} of {len(group)}",
            ],
        )
    datasets = Block(
        title="Per dataset: bytes held in memory by a job",
        row_header="dataset",
        groups=[("", 2)],
        columns=["training + selection splits (MB)", "test split (MB)"],
    )
    for dataset, group in frame.groupby("dataset", sort=True):
        datasets.add_row(str(dataset), [_mb(group["data_bytes"].max()), _mb(group["test_data_bytes"].max())])
    jobs = Block(
        title="Per job",
        row_header="job",
        groups=[("", 9)],
        columns=[
            "dataset",
            "peak MB",
            "request MB",
            "s/update",
            "batch wait s",
            "load/step",
            "checkpoint MB",
            "resume",
            "wall s",
        ],
    )
    for row in frame.itertuples(index=False):
        resume = (
            "same state"
            if row.killed and row.resume_same_state
            else "not killed"
            if not row.killed
            else f"DIFFERS: {row.state_differs_in}"
        )
        jobs.add_row(
            row.job,
            [
                row.dataset,
                _num(row.peak_rss_mb, ",.0f"),
                _num(row.mem_mb_request, ","),
                _num(row.s_per_update, ".3f"),
                _num(row.batch_wait_s, ".4f"),
                _num(row.load_to_step, ".3f"),
                _num(row.checkpoint_mb, ".1f"),
                resume,
                _num(row.wall_s, ".0f"),
            ],
        )
    found = problems(frame)
    exact = int((frame["killed"] & frame["resume_same_state"]).sum())
    caption = [
        f"{len(frame)} jobs rehearsed on {machine}: the paper's networks, batch sizes, optimizers and schedules "
        f"through the real loaders, on synthetic data of the real datasets' sizes (not the datasets: accuracies "
        f"mean nothing), a few updates each; every job killed with SIGKILL after its first epoch and resumed "
        f"({exact} of {len(frame)} resumed to exactly the state at the kill).",
        "Peak MB: the larger peak resident memory of the job's two executions, against the memory it requests "
        "(mem_mb_per_job). s/update: wall seconds of one training update after the resume, on this CPU. Load/step: "
        "the wait for a training batch over the update's time. Checkpoint MB: last.pt and best.pt together.",
        (f"Problems: {len(found)}, listed below." if found else "Problems: none."),
    ]
    return Document(
        title="Rehearsal of the paper's jobs (synthetic data at full size)",
        caption=caption,
        blocks=[setups, datasets, jobs],
        label="rehearsal",
        notes=found,
    )


def write_rehearsal_report(
    metrics_files: Iterable[str | Path], out: str | Path, runs_root: str | Path | None = None
) -> list[Path]:
    frame = rehearsal_frame(metrics_files, runs_root)
    doc = rehearsal_document(frame)
    out = Path(out)
    return [
        write_csv(out / "rehearsal.csv", frame),
        write_text(out / "rehearsal.md", to_markdown(doc)),
        write_text(out / "rehearsal.html", to_html(doc, notes_first=True)),
    ]
