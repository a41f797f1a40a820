"""How a job's accuracy is defined, in the words its metrics.json records (``accuracy_definition``), and the
per-item values that definition averages: every output of a run (tables, claims, MLflow) reads one cell
through the same definition, so that it prints one number for it."""

from __future__ import annotations

import math

import numpy as np

PER_BATCH = "mean of per-batch accuracies"
"""official Table 2: the unweighted mean of the test batches' accuracies (a smaller last batch weighs as
much as a full one); ci95 = 1.96·sd/√batches."""
PER_IMAGE = "fraction of correct images"
"""corrected Table 2: every test image weighs the same; binomial ci95."""
PER_EPISODE = "mean over test tasks of the query accuracy; ci95 = 1.96·sd/√tasks"
"""Tables 4 and 5: every fixed test task weighs the same."""


def batch_means(correct: np.ndarray, batch_sizes: np.ndarray) -> np.ndarray:
    """Per-image outcomes ``[..., images]`` (in evaluation order) → the accuracy of each test batch
    ``[..., batches]``, the items a per-batch accuracy averages."""
    sizes = np.asarray(batch_sizes, dtype=np.int64)
    if sizes.sum() != correct.shape[-1] or (sizes <= 0).any():
        raise ValueError(f"batch sizes summing to {int(sizes.sum())} do not split {correct.shape[-1]} images")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.add.reduceat(correct, starts, axis=-1) / sizes


def format_statistic(value: float | None, statistic: str) -> str:
    """A claim's statistic as every output prints it: accuracies in points with two decimals, differences
    signed, savings in percent (the claims report, the README, the MLflow tables run)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return (
        f"{100 * value:.2f}%"
        if statistic.endswith("saving")
        else f"{value:+.2f}"
        if statistic == "difference"
        else f"{value:.2f}"
    )
