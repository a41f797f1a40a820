"""Summaries of per-episode accuracies (official §5.2 "Metric": the mean over the 600 tasks; the
paper reports no interval, the harness adds the usual 95% normal interval)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def mean_ci95(accuracies: torch.Tensor | np.ndarray | Sequence[float]) -> tuple[float, float]:
    """(mean, 1.96·s/√n) in percent, of n per-episode accuracies given as fractions in [0, 1].

    s is the sample standard deviation (n − 1 in the denominator); with a single episode the interval is
    undefined and returned as NaN.
    """
    values = np.asarray(
        accuracies.detach().cpu() if isinstance(accuracies, torch.Tensor) else accuracies, dtype=np.float64
    )
    if values.ndim != 1:
        raise ValueError(
            f"mean_ci95 takes one accuracy per episode (a 1-D array), got shape {values.shape}; "
            f"for a [bitwidths, episodes] array call it once per row"
        )
    if values.size == 0:
        raise ValueError("mean_ci95 of no accuracies")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise ValueError(f"accuracies must be fractions in [0, 1], got values in [{values.min()}, {values.max()}]")
    mean = 100.0 * float(values.mean())
    if values.size == 1:
        return mean, math.nan
    return mean, 100.0 * 1.96 * float(values.std(ddof=1)) / math.sqrt(values.size)
