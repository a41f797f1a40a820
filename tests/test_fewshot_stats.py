"""mean_ci95: the mean accuracy and the half-width of its 95% normal interval, in percent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mebqat.kernels import mean_ci95


def test_mean_and_interval_in_percent():
    rng = np.random.default_rng(0)
    accuracies = rng.integers(0, 16, size=600) / 15  # 600 episodes with 15 queries each
    mean, ci = mean_ci95(torch.tensor(accuracies))
    assert mean == pytest.approx(100 * accuracies.sum() / 600, rel=1e-12)
    deviations = accuracies - accuracies.mean()
    sample_std = math.sqrt((deviations**2).sum() / 599)
    assert ci == pytest.approx(100 * 1.96 * sample_std / math.sqrt(600), rel=1e-12)
    assert mean_ci95([0.5, 0.5, 0.5]) == (50.0, 0.0)


def test_edge_cases_and_bad_input():
    mean, ci = mean_ci95([0.8])
    assert mean == pytest.approx(80.0) and math.isnan(ci)
    with pytest.raises(ValueError, match="no accuracies"):
        mean_ci95([])
    with pytest.raises(ValueError, match="fractions in"):
        mean_ci95([50.0, 60.0])
    with pytest.raises(ValueError, match="1-D"):
        mean_ci95(np.ones((9, 600)))
