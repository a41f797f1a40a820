"""The paper's tables and figures from the runs' ``metrics.json`` files.

collect(paths)              every metrics.json under run directories → one tidy DataFrame
combine_seeds(frame)        one row per (cell, bitwidth): mean over seeds, 95% interval
table_cells(combined)       which job fills which cell (dedicated QAT: own row; +QAT FP row = plain model)
accuracy_frame(table, …)    Tables 2/4/5 in long form, ours beside the paper's
cost_frame(frame)           Table 3: formulas with the real N, M, r, T beside the measured counts
build(runs, out, figures)   everything `mebqat tables build` writes
"""

from .accuracy_tables import accuracy_document, accuracy_frame
from .build import build
from .cells import table_cells
from .collect import MetricsError, collect, combine_seeds, find_metrics, read_metrics
from .cost_model import SetupCosts, backprop_ratio, backprop_saving, setup_costs, storage_saving
from .cost_table import cost_document, cost_frame, measured_costs
from .figures import accuracy_figure, cost_figure
from .layout import table_rows, table_setups
from .render import Block, Document, to_latex, to_markdown

__all__ = [
    "Block",
    "Document",
    "MetricsError",
    "SetupCosts",
    "accuracy_document",
    "accuracy_figure",
    "accuracy_frame",
    "backprop_ratio",
    "backprop_saving",
    "build",
    "collect",
    "combine_seeds",
    "cost_document",
    "cost_figure",
    "cost_frame",
    "find_metrics",
    "measured_costs",
    "read_metrics",
    "setup_costs",
    "storage_saving",
    "table_cells",
    "table_rows",
    "table_setups",
    "to_latex",
    "to_markdown",
]
