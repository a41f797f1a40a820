"""Bitwidth candidates (75 / 73 / 73) and the seeded task sampler."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from mebqat.core.tasks import FP_TASK
from mebqat.quant import BitwidthTask, TaskSampler, bitwidth_candidates, task_tensor, tasks_from_tensor, validate_task

Q = [2, 3, 4, 5, 6, 7, 8, 16]
FP = None


def test_candidate_counts():
    assert len(bitwidth_candidates("dorefa")) == 75
    assert len(bitwidth_candidates("sat")) == 73
    assert len(bitwidth_candidates("lsq")) == 73


def test_candidate_sets_are_exactly_the_specified_pairs():
    sat = {BitwidthTask(FP, FP)} | {BitwidthTask(w, a) for w in Q for a in Q + [FP]}
    assert set(bitwidth_candidates("sat")) == sat
    assert set(bitwidth_candidates("lsq")) == sat
    dorefa = sat | {BitwidthTask(1, 1), BitwidthTask(1, FP)}
    assert set(bitwidth_candidates("dorefa")) == dorefa
    # the authors' code allows (1, FP) although the paper says otherwise; it excludes (FP, a) for a ≠ FP
    assert BitwidthTask(1, FP) in dorefa and BitwidthTask(FP, 4) not in dorefa and BitwidthTask(4, 1) not in dorefa
    assert len(set(bitwidth_candidates("dorefa"))) == 75


@pytest.mark.parametrize("family", ["dorefa", "sat", "lsq"])
def test_sampler_is_uniform_over_candidates(family):
    """Chi-square goodness of fit of 400 draws per candidate against the uniform distribution."""
    candidates = bitwidth_candidates(family)
    sampler = TaskSampler(family, tasks_per_step=1, seed=1234)
    n = 400 * len(candidates)
    counts = dict.fromkeys(candidates, 0)
    for _ in range(n):
        counts[sampler.draw()] += 1
    result = stats.chisquare(list(counts.values()))
    assert result.pvalue > 1e-3, (
        f"{family}: sampler is not uniform (chi2={result.statistic:.1f}, p={result.pvalue:.2e})"
    )
    # and the sampler does not merely return a uniform *marginal*: mixed pairs dominate, as specified
    uniform_share = sum(c for t, c in counts.items() if t.w == t.a) / n
    assert uniform_share == pytest.approx((len(Q) + 1 + (family == "dorefa")) / len(candidates), abs=0.02)


def test_chi_square_would_catch_a_non_uniform_sampler():
    """The test above can fail: drawing b_w, b_a independently *without* redrawing both on rejection
    (redrawing only b_a) is biased toward pairs whose b_w has fewer valid partners."""
    rng = np.random.default_rng(0)
    choices = [1, 2, 3, 4, 5, 6, 7, 8, 16, None]
    from mebqat.quant import is_rejected

    counts: dict = {}
    for _ in range(30000):
        w = choices[rng.integers(len(choices))]
        a = choices[rng.integers(len(choices))]
        while is_rejected(w, a):
            a = choices[rng.integers(len(choices))]
        counts[(w, a)] = counts.get((w, a), 0) + 1
    assert stats.chisquare(list(counts.values())).pvalue < 1e-6


def test_guaranteed_tasks_come_first_every_step():
    sampler = TaskSampler("dorefa", tasks_per_step=4, guaranteed=["(FP,FP)", (1, 1)], seed=3)
    for _ in range(200):
        tasks = sampler.sample()
        assert len(tasks) == 4
        assert tasks[:2] == [BitwidthTask(FP, FP), BitwidthTask(1, 1)]
        assert all(t in bitwidth_candidates("dorefa") for t in tasks[2:])


def test_sampler_is_seeded_and_resumable():
    a, b = TaskSampler("sat", 4, ["(FP,FP)"], seed=7), TaskSampler("sat", 4, ["(FP,FP)"], seed=7)
    assert [a.sample() for _ in range(20)] == [b.sample() for _ in range(20)]
    state = a.state_dict()
    expected = [a.sample() for _ in range(10)]
    resumed = TaskSampler("sat", 4, ["(FP,FP)"], seed=999)
    resumed.load_state_dict(state)
    assert [resumed.sample() for _ in range(10)] == expected
    with pytest.raises(ValueError, match="family"):
        TaskSampler("dorefa", 4).load_state_dict(state)


def test_sampler_refuses_bad_configuration():
    with pytest.raises(ValueError, match=r"\(1,1\) is not a valid sat task"):
        TaskSampler("sat", 4, guaranteed=[(1, 1)])
    with pytest.raises(ValueError, match="do not fit"):
        TaskSampler("dorefa", 1, guaranteed=["(FP,FP)", "(1,1)"])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("(4,FP)", BitwidthTask(4, None)),
        ("4, 8", BitwidthTask(4, 8)),
        ("w2a32", BitwidthTask(2, None)),
        ((None, None), BitwidthTask(None, None)),
        (["16", "fp"], BitwidthTask(16, None)),
    ],
)
def test_task_parsing(text, expected):
    assert BitwidthTask.parse(text) == expected


def test_task_label_is_path_safe_and_reads_back():
    """Job ids and subset file names spell a task one way (w4aFP); FP_TASK is (FP,FP)."""
    assert [t.label() for t in (BitwidthTask(4, None), FP_TASK, BitwidthTask(16, 2))] == ["w4aFP", "wFPaFP", "w16a2"]
    assert all(BitwidthTask.parse(t.label()) == t for t in bitwidth_candidates("dorefa"))
    assert FP_TASK == BitwidthTask(None, None) and str(FP_TASK) == "(FP,FP)"


def test_task_validation_names_the_problem():
    with pytest.raises(ValueError, match=r"\(FP,4\) is not a valid dorefa task"):
        validate_task("(FP,4)", "dorefa")
    with pytest.raises(ValueError, match="cannot read bitwidth task"):
        BitwidthTask.parse("4-bit")
    with pytest.raises(ValueError, match="unknown quantizer family"):
        bitwidth_candidates("int8")


def test_task_tensor_round_trip():
    tasks = list(itertools.islice(bitwidth_candidates("dorefa"), 0, 75, 7))
    codes = task_tensor(tasks)
    assert codes.shape == (len(tasks), 2)
    assert tasks_from_tensor(codes) == tasks
    assert (codes[[t.is_full_precision for t in tasks]] == 32).all()
