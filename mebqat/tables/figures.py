"""Figures: accuracy against bitwidth per setup (ours solid with 95% error bars, the paper's dashed), and
the Table 3 cost figure (storage and backprops per update against the number of supported bitwidth
settings N, from the cost model with each setup's real M and r, with the runs' measured points).

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly (Agg canvas, no pyplot state, no
display needed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .accuracy_tables import rehearsal_note, standin_note
from .cost_model import ADAPTIVE, DEDICATED, MEBQAT, ROLES, backprops, setup_costs, storage
from .cost_table import measured_costs
from .layout import SetupLayout, row_label

ROLE_LABEL = {DEDICATED: "dedicated QAT (N models)", ADAPTIVE: "AdaBits / ApDNN (switchable BN)", MEBQAT: "MEBQAT"}
ROLE_STYLE = {DEDICATED: ("tab:blue", "s"), ADAPTIVE: ("tab:orange", "^"), MEBQAT: ("tab:green", "o")}


def accuracy_figure_name(layout: SetupLayout) -> str:
    return f"accuracy_{layout.table}_{layout.name}"


def _x_label(row: tuple[str, str]) -> str:
    return row[0] if row[0] == row[1] else row_label(row)


def accuracy_figure(layout: SetupLayout, long: pd.DataFrame) -> Figure:
    """One setup: a line per method over the setup's bitwidth rows (categorical x axis: 1 … 8, 16, FP)."""
    rows = list(layout.rows)
    position = {row: i for i, row in enumerate(rows)}
    mine = long[long["setup"] == layout.name]
    standin = standin_note(mine)
    rehearsal = rehearsal_note(mine)
    paper_label = (
        "paper (not comparable: stand-in data)"
        if standin
        else "paper (not comparable: a rehearsal)"
        if rehearsal
        else "paper"
    )
    figure = Figure(figsize=(9.0, 4.2))
    axes = figure.add_subplot()
    colors = [f"C{i}" for i in range(len(layout.methods))]
    drawn = False
    # Methods side by side within a bitwidth, so that their error bars do not hide each other.
    offsets = (np.arange(len(colors)) - (len(colors) - 1) / 2) * 0.08
    for color, offset, title in zip(colors, offsets, layout.method_titles(), strict=True):
        method = mine[(mine["method"] == title) & mine.apply(lambda r: (r["bits_w"], r["bits_a"]) in position, axis=1)]
        x = (
            np.array([position[(w, a)] for w, a in zip(method["bits_w"], method["bits_a"], strict=True)], dtype=float)
            + offset
        )
        ours = method["accuracy"].notna().to_numpy()
        if ours.any():
            error = method["ci95"].fillna(0).to_numpy()[ours]
            axes.errorbar(
                x[ours],
                method["accuracy"].to_numpy()[ours],
                yerr=error,
                color=color,
                marker="o",
                linestyle="-",
                capsize=3,
                label=f"{title} (ours)",
            )
            drawn = True
        paper = method["paper_accuracy"].notna().to_numpy()
        if paper.any():
            axes.plot(
                x[paper],
                method["paper_accuracy"].to_numpy()[paper],
                color=color,
                marker="x",
                linestyle="--",
                alpha=0.8,
                label=f"{title}, {paper_label}",
            )
            drawn = True
    if not drawn:
        axes.text(
            0.5,
            0.5,
            "no results and no paper values for this setup",
            ha="center",
            va="center",
            transform=axes.transAxes,
        )
    axes.set_xticks(range(len(rows)), [_x_label(r) for r in rows])
    axes.set_xlim(-0.5, len(rows) - 0.5)
    axes.set_xlabel("bitwidth (b_w = b_a)")
    axes.set_ylabel("accuracy (%)")
    axes.grid(alpha=0.3)
    title = f"{layout.table.replace('table', 'Table ')}: {layout.title}"
    if standin:
        title += f"\nstand-in data: {standin} — not comparable with the paper"
    elif rehearsal:
        title += f"\nREHEARSAL: {rehearsal} — not results"
    axes.set_title(title, fontsize=10)
    if drawn:
        axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return figure


def cost_figure(frame: pd.DataFrame) -> Figure:
    """Storage (log scale) and backprops per update against N, per Table 2 setup, with measured points."""
    costs_all = setup_costs(frame)
    measured = measured_costs(frame)
    figure = Figure(figsize=(10.0, 3.2 * len(costs_all)))
    grid = figure.subplots(len(costs_all), 2, squeeze=False)
    for (store_ax, bp_ax), costs in zip(grid, costs_all, strict=True):
        n = np.arange(1, costs.n + 1)
        for role in ROLES:
            color, marker = ROLE_STYLE[role]
            label = f"{ROLE_LABEL[role]}" + (
                f" (r = {100 * costs.r:.2f}%)" if role == ADAPTIVE and costs.r is not None else ""
            )
            if costs.size is not None:
                store_ax.plot(n, [storage(role, int(k), costs.m, costs.r) for k in n], color=color, label=label)
            bp_ax.plot(n, [backprops(role, int(k), costs.t) for k in n], color=color, label=ROLE_LABEL[role])
            found = measured[(measured["setup"] == costs.layout.name) & (measured["method"] == costs.methods[role])]
            for _, run in found.iterrows():
                point = dict(
                    color=color,
                    marker=marker,
                    markersize=8,
                    markeredgecolor="black",
                    linestyle="none",
                    label=f"{costs.title(role)} measured ({run['scale']}, {run['jobs']} job(s))",
                )
                store_ax.plot([run["bitwidths"]], [run["stored"]], **point)
                bp_ax.plot([run["bitwidths"]], [run["backward"]], **point)
        for ax in (store_ax, bp_ax):
            ax.axvline(costs.n, color="grey", linestyle=":", linewidth=1)
            ax.set_xlabel("number of supported bitwidth settings N")
            ax.grid(alpha=0.3)
        store_ax.set_yscale("log")
        store_ax.set_ylabel("stored parameters")
        bp_ax.set_ylabel("backprops per update")
        name = f"{costs.layout.paper_dataset}, {costs.layout.paper_model}"
        store_ax.set_title(
            f"{name}: storage (M = {costs.m:,})"
            if costs.size is not None
            else f"{name}: storage (M unknown: no run of this setup)",
            fontsize=9,
        )
        bp_ax.set_title(f"{name}: backprops per update (T = {costs.t}; dotted: N = {costs.n})", fontsize=9)
        if store_ax.get_legend_handles_labels()[0]:
            store_ax.legend(fontsize=6, loc="upper left")
        else:
            store_ax.text(
                0.5, 0.5, "no run of this setup measured M", ha="center", va="center", transform=store_ax.transAxes
            )
        bp_ax.legend(fontsize=6, loc="upper left")
    title = "Table 3: cost model against the number of bitwidth settings, with measured points"
    standin = (
        standin_note(measured.assign(is_standin=measured["is_standin"].astype(object))) if not measured.empty else None
    )
    if standin:
        title += (
            f"\nmeasured points from stand-in data ({standin}) and reduced-width models — not comparable with the paper"
        )
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
