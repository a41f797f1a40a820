"""Whether the paper's claims hold: each claim of ``mebqat/resources/claims.yaml`` checked on the runs.

Per claim and setup, its statistic is computed for every bitwidth row it names, from the per-item
outcomes the runs stored (``image_correct.npz``: each test image right or wrong; ``episode_accuracies.npz``:
each fixed test episode's accuracy), paired over the same items where two cells are compared, with seeds
averaged per item. The verdict needs every row: ``holds`` when the 95% interval clears the threshold at every
row, ``fails`` otherwise (the reason says whether the estimate itself misses the threshold or only its
interval does), ``not measured`` when a cell has no run (the reason names it). The paper's value is the same
statistic computed on the paper's own tables (or its stated number), for orientation; on stand-in data it is
never compared.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..core.accuracy import PER_BATCH, batch_means, format_statistic
from ..core.config import RESOURCES
from ..core.files import InputError
from ..core.registry import METHODS
from ..core.rundir_layout import EPISODE_OUTCOMES, IMAGE_OUTCOMES, read_metrics_file
from ..core.scales import SCALES
from ..core.schemas import first_violation
from ..core.tasks import bitwidth_candidates
from .collect import MetricsError
from .layout import bits_rank, is_dedicated, table_setups
from .paper import paper_accuracies
from .render import EMPTY, Block, Document

CLAIMS_FILE = RESOURCES / "claims.yaml"
HOLDS, FAILS, NOT_MEASURED = "holds", "fails", "not measured"
Z95 = 1.96
COLUMNS = [
    "claim",
    "table",
    "setup",
    "method",
    "statement",
    "statistic",
    "rows",
    "worst_row",
    "ours",
    "ci95_low",
    "ci95_high",
    "paper",
    "threshold",
    "verdict",
    "reason",
    "n",
    "scale",
    "fidelity",
    "data",
    "is_standin",
]


class ClaimsError(ValueError):
    """A claims file that cannot be used, named with the problem."""


@dataclass(frozen=True)
class Side:
    methods: tuple[str, ...] | str
    """Method names (the first one a setup has is used), or ``all``: every method of the setup."""
    row: str | None = None
    """A fixed row (``FP``) instead of the compared one."""


@dataclass(frozen=True)
class Claim:
    id: str
    tables: tuple[str, ...]
    statement: str
    source: str
    statistic: str
    a: Side
    b: Side | None
    rows: Mapping[str, Any]
    why: str
    at_least: float | None = None
    at_most: float | None = None
    at_least_chance: Mapping[str, float] | None = None
    paper_value: float | None = None

    def threshold_text(self, chance: float | None) -> str:
        if self.at_least_chance is not None:
            return (
                f"≥ {self.chance_threshold(chance):.1f} (chance {100 * chance:.0f}%)"
                if chance
                else "≥ far above chance"
            )
        return (
            f"≥ {format_statistic(self.at_least, self.statistic)}"
            if self.at_least is not None
            else f"≤ {format_statistic(self.at_most, self.statistic)}"
        )

    def chance_threshold(self, chance: float) -> float:
        spec = self.at_least_chance or {}
        return max(100 * chance * spec.get("times", 1), 100 * chance + spec.get("plus", 0))


def load_claims(path: str | Path = CLAIMS_FILE) -> list[Claim]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ClaimsError(f"{path}: not a readable YAML file ({err})") from None
    violation = first_violation(data, "claims")
    if violation:
        raise ClaimsError(f"{path}: does not match the claims schema {violation}")
    claims, seen = [], set()
    for entry in data["claims"]:
        if entry["id"] in seen:
            raise ClaimsError(f"{path}: claim {entry['id']!r} appears twice")
        seen.add(entry["id"])
        tables = entry["table"] if isinstance(entry["table"], list) else [entry["table"]]
        sides = {
            key: Side(tuple(entry[key]["methods"]) if entry[key]["methods"] != "all" else "all", entry[key].get("row"))
            for key in ("a", "b")
            if key in entry
        }
        for side in sides.values():
            for name in side.methods if side.methods != "all" else ():
                METHODS.get(name)  # an unknown method is an error naming it
        claims.append(
            Claim(
                id=entry["id"],
                tables=tuple(tables),
                statement=entry["statement"],
                source=entry["source"],
                statistic=entry["statistic"],
                a=sides["a"],
                b=sides.get("b"),
                rows=entry.get("rows", {}),
                why=entry["why"],
                at_least=entry.get("at_least"),
                at_most=entry.get("at_most"),
                at_least_chance=entry.get("at_least_chance"),
                paper_value=entry.get("paper_value"),
            )
        )
    return claims


# ---------------------------------------------------------------- per-item outcomes of the runs


@dataclass
class Cell:
    """One method's outcome at one row of a setup: the per-item values (%), aligned by item id; ``items``
    names the item set ("test tasks <fingerprint>", "test batches <digest>" or "test images")."""

    ids: np.ndarray
    values: np.ndarray
    items: str = "test images"


def _definition(metrics_path: str) -> str | None:
    return read_metrics_file(metrics_path).get("accuracy_definition")


def _per_batch(
    values: np.ndarray, image_ids: np.ndarray, batch_sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """A per-batch accuracy (official Table 2) averages batches, not images: its items are the test batches,
    named by the images they hold in order (two runs pair only when their batches hold the same images)."""
    digest = hashlib.sha256(
        np.ascontiguousarray(image_ids, dtype=np.int64).tobytes()
        + np.ascontiguousarray(batch_sizes, dtype=np.int64).tobytes()
    ).hexdigest()[:12]
    return batch_means(values, batch_sizes), np.arange(len(batch_sizes)), f"test batches {digest}"


@dataclass
class Outcomes:
    """Every run's per-item outcomes, by (setup, method, row)."""

    frame: pd.DataFrame
    _loaded: dict[str, Any] = field(default_factory=dict)

    def _items(self, metrics_path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str] | None:
        """(row labels, per-item values in %, item ids, item set) of one job, or None if it stored none."""
        if metrics_path not in self._loaded:
            folder = Path(metrics_path).parent
            found = None
            for name, key in ((IMAGE_OUTCOMES, "correct"), (EPISODE_OUTCOMES, "accuracies")):
                file = folder / name
                if file.is_file():
                    try:
                        with np.load(file, allow_pickle=False) as npz:
                            values = npz[key].astype(np.float64) * 100
                            ids = npz["image_ids"] if "image_ids" in npz.files else np.arange(values.shape[1])
                            items = f"test tasks {npz['fingerprint']}" if "fingerprint" in npz.files else "test images"
                            if key == "correct" and _definition(metrics_path) == PER_BATCH:
                                values, ids, items = _per_batch(values, np.asarray(ids), npz["batch_sizes"])
                            found = (np.array([str(b) for b in npz["bits"]]), values, np.asarray(ids), items)
                    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, InputError) as err:
                        raise MetricsError(
                            f"{file}: not a readable per-item file ({err}); re-run the job's "
                            f"evaluation (`mebqat evaluate {folder}`)"
                        ) from None
            self._loaded[metrics_path] = found
        return self._loaded[metrics_path]

    def jobs(self, setup: str, method: str, row: tuple[str, str]) -> pd.DataFrame:
        """The jobs (one per seed) whose result fills (setup, method, row)."""
        mine = self.frame[
            (self.frame["setup"] == setup)
            & (self.frame["method"] == method)
            & (self.frame["bits_w"] == row[0])
            & (self.frame["bits_a"] == row[1])
        ]
        if is_dedicated(method):
            mine = mine[mine["cell_task"] == f"({row[0]},{row[1]})"]
            fp_row_from = METHODS.get(method).fp_row_from
            if mine.empty and row == ("FP", "FP") and fp_row_from:
                return self.jobs(setup, fp_row_from, row)
        return mine.drop_duplicates("path")

    def cell(self, setup: str, method: str, row: tuple[str, str]) -> Cell | None:
        jobs = self.jobs(setup, method, row)
        per_seed = []
        for path in jobs["path"]:
            items = self._items(path)
            if items is None:
                continue
            labels, values, ids, item_set = items
            label = f"({row[0]},{row[1]})"
            if label in labels:
                order = np.argsort(ids)
                per_seed.append((ids[order], values[list(labels).index(label)][order], item_set))
        if not per_seed:
            return None
        ids, _, item_set = per_seed[0]
        if any(not np.array_equal(ids, other) or other_set != item_set for other, _, other_set in per_seed[1:]):
            raise MetricsError(
                f"the seeds of {setup}/{method} at ({row[0]},{row[1]}) were evaluated on different "
                f"test items; they cannot be paired"
            )
        return Cell(ids, np.mean([values for _, values, _ in per_seed], axis=0), item_set)

    def value(self, setup: str, method: str, column: str) -> float | None:
        mine = self.frame[(self.frame["setup"] == setup) & (self.frame["method"] == method)].drop_duplicates("path")
        return None if mine.empty else float(mine.groupby("cell_task")[column].mean().mean())

    def stored_per_model(self, setup: str, method: str) -> float | None:
        mine = self.frame[(self.frame["setup"] == setup) & (self.frame["method"] == method)].drop_duplicates("path")
        return None if mine.empty else float(mine["stored_parameters"].mean())


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, 95% low, 95% high) with the normal interval 1.96·sd/√n (a point for n = 1)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, mean, mean
    half = Z95 * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


# ---------------------------------------------------------------- checking one claim on one setup


def _row_key(label: str) -> tuple[str, str]:
    return (label, label)


def claim_rows(
    claim: Claim, setup_rows: Sequence[tuple[str, str]], evaluated: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The rows a claim compares on one setup; ``evaluated``: the rows the compared method (``b`` for
    ``evaluated_by: b``, else ``a``) has results for (``highest`` takes the highest of them)."""
    spec = claim.rows
    uniform = [r for r in setup_rows if r[0] == r[1]]
    if spec.get("highest"):
        return [max(evaluated, key=lambda r: (bits_rank(r[0]), bits_rank(r[1])))] if evaluated else []
    if "bits" in spec:
        wanted = {str(b) for b in spec["bits"]}
        rows = [r for r in uniform if r[0] in wanted]
    elif spec.get("quantized"):
        rows = [r for r in uniform if r[0] != "FP"]
    elif "min_bits" in spec:
        rows = [r for r in uniform if r[0] != "FP" and int(r[0]) >= spec["min_bits"]]
    elif spec.get("evaluated_by") == "b":
        rows = [r for r in uniform if r in evaluated]
    else:
        rows = list(uniform)
    if spec.get("include_fp") and ("FP", "FP") in setup_rows and ("FP", "FP") not in rows:
        rows.append(("FP", "FP"))
    return rows


def pick(side: Side, methods: Sequence[str]) -> list[str]:
    if side.methods == "all":
        return [m for m in methods if not (is_dedicated(m) and METHODS.get(m).fp_row_from)]
    return [m for m in side.methods if m in methods][:1]


@dataclass
class Verdict:
    claim: Claim
    table: str
    setup: str
    method: str
    rows: list[tuple[str, str]]
    worst_row: tuple[str, str] | None = None
    ours: float | None = None
    low: float | None = None
    high: float | None = None
    paper: float | None = None
    n: int | None = None
    chance: float | None = None
    verdict: str = NOT_MEASURED
    reason: str = ""


def _unit(cell: Cell) -> str:
    """What a cell's items are, in words: "test batches", "test images" or "test tasks"."""
    return " ".join(cell.items.split()[:2])


def _judge(
    claim: Claim, verdict: Verdict, estimates: dict[tuple[str, str], tuple[float, float, float, int, str]]
) -> None:
    """Fill the verdict from per-row (mean, low, high, n, unit): the worst row decides."""
    if claim.at_most is not None:
        worst = max(estimates, key=lambda r: estimates[r][2])
        mean, low, high, n, unit = estimates[worst]
        limit, ok, bound = claim.at_most, high <= claim.at_most, "upper"
        missed = mean > limit
    else:
        if claim.at_least_chance is not None:
            assert verdict.chance is not None  # check_setup gives every accuracy verdict its chance level
            limit = claim.chance_threshold(verdict.chance)
        else:
            assert claim.at_least is not None  # the schema: at_most, at_least or at_least_chance, one of them
            limit = claim.at_least
        worst = min(estimates, key=lambda r: estimates[r][1])
        mean, low, high, n, unit = estimates[worst]
        ok, bound = low >= limit, "lower"
        missed = mean < limit
    verdict.worst_row, verdict.ours, verdict.low, verdict.high, verdict.n = worst, mean, low, high, n
    row = f"({worst[0]},{worst[1]})"
    if ok:
        verdict.verdict, verdict.reason = HOLDS, f"every row clears the threshold; the closest is {row}"
    elif missed:
        verdict.verdict = FAILS
        verdict.reason = f"at {row} the estimate {format_statistic(mean, claim.statistic)} itself misses the threshold"
    else:
        verdict.verdict = FAILS
        verdict.reason = (
            f"at {row} the estimate {format_statistic(mean, claim.statistic)} clears the threshold but its 95% "
            f"{bound} bound {format_statistic(low if bound == 'lower' else high, claim.statistic)} does not: "
            f"not shown with {n} {unit}"
        )


def _evaluated(frame: pd.DataFrame, setup: str, method: str | None) -> set[tuple[str, str]]:
    mine = frame[(frame["setup"] == setup) & (frame["method"] == method)]
    return {(w, a) for w, a in mine[["bits_w", "bits_a"]].itertuples(index=False)}


def check_setup(claim: Claim, table: str, layout: Any, outcomes: Outcomes, frame: pd.DataFrame) -> list[Verdict]:
    """The claim's verdicts on one setup: one per method of side ``a`` (one, or every method for ``all``)."""
    methods = list(dict.fromkeys([*layout.methods, *frame.loc[frame["setup"] == layout.name, "method"]]))
    a_methods = pick(claim.a, methods)
    b_methods = pick(claim.b, methods) if claim.b is not None else []
    if not a_methods or (claim.b is not None and not b_methods):
        return []
    b_method = b_methods[0] if b_methods else None
    if claim.statistic in ("storage_saving", "backprop_saving"):
        return [_check_costs(claim, table, layout, a_methods[0], b_method, outcomes)]
    verdicts = []
    for method in a_methods:
        evaluated = _evaluated(frame, layout.name, b_method if claim.rows.get("evaluated_by") == "b" else method)
        rows = claim_rows(claim, layout.rows, evaluated)
        verdict = Verdict(claim, table, layout.name, method, rows, chance=1 / (layout.ways or 10))
        if not rows:
            verdict.reason = f"no run of {layout.name}/{method}"
            verdicts.append(verdict)
            continue
        estimates, missing = {}, []
        for row in rows:
            a_row = _row_key(claim.a.row) if claim.a.row else row
            a_cell = outcomes.cell(layout.name, method, a_row)
            if a_cell is None:
                missing.append(f"{layout.name}/{method} at ({a_row[0]},{a_row[1]})")
                continue
            if claim.statistic == "accuracy":
                estimates[row] = (*mean_ci(a_cell.values), len(a_cell.values), _unit(a_cell))
                continue
            # a difference has a side b (the schema), and without its method check_setup has returned
            assert claim.b is not None and b_method is not None
            b_row = _row_key(claim.b.row) if claim.b.row else row
            b_cell = outcomes.cell(layout.name, b_method, b_row)
            if b_cell is None:
                missing.append(f"{layout.name}/{b_method} at ({b_row[0]},{b_row[1]})")
                continue
            if not np.array_equal(a_cell.ids, b_cell.ids) or a_cell.items != b_cell.items:
                raise MetricsError(
                    f"{layout.name}: {method} and {b_method} were evaluated on different test items "
                    f"(another test set or seed); the claim {claim.id} cannot pair them"
                )
            estimates[row] = (*mean_ci(a_cell.values - b_cell.values), len(a_cell.values), _unit(a_cell))
        verdict.paper = _paper_value(claim, table, layout, method, b_method, rows)
        if missing:
            verdict.reason = "no run for " + "; ".join(missing)
        else:
            _judge(claim, verdict, estimates)
        verdicts.append(verdict)
    return verdicts


def _check_costs(claim: Claim, table: str, layout: Any, a: str, b: str | None, outcomes: Outcomes) -> Verdict:
    n = len(bitwidth_candidates(layout.quantizer))
    verdict = Verdict(claim, table, layout.name, a, [], paper=claim.paper_value)
    assert claim.at_least is not None, f"claim {claim.id}: a saving is checked against at_least"
    if claim.statistic == "storage_saving":
        assert b is not None  # the schema: a storage saving has a side b, and check_setup found its method
        mine, theirs = outcomes.stored_per_model(layout.name, a), outcomes.stored_per_model(layout.name, b)
        if mine is None or theirs is None:
            verdict.reason = "no run for " + " and ".join(
                f"{layout.name}/{m}" for m, v in ((a, mine), (b, theirs)) if v is None
            )
            return verdict
        value = 1 - mine / (n * theirs)
        detail = f"{mine:,.0f} parameters against N = {n} × {theirs:,.0f}"
    else:
        backprops = outcomes.value(layout.name, a, "backward_passes_per_update")
        if backprops is None:
            verdict.reason = f"no run for {layout.name}/{a}"
            return verdict
        value = 1 - backprops / n
        detail = f"{backprops:g} backward passes per update counted, against N = {n}"
    verdict.ours = verdict.low = verdict.high = value
    ok = value >= claim.at_least
    verdict.verdict = HOLDS if ok else FAILS
    verdict.reason = detail + ("" if ok else f": the saving {100 * value:.2f}% is below {100 * claim.at_least:.2f}%")
    return verdict


def _paper_value(
    claim: Claim, table: str, layout: Any, a: str, b: str | None, rows: list[tuple[str, str]]
) -> float | None:
    """The claim's statistic on the paper's own numbers (worst row), or None where the paper lost them."""
    if claim.paper_value is not None:
        return claim.paper_value
    paper = paper_accuracies(table)
    mine = paper[
        (paper["dataset"] == layout.paper_dataset)
        & (paper["model"] == layout.paper_model)
        & (paper["shots"] == ("" if layout.shots is None else str(layout.shots)))
    ]

    def accuracy(method: str, row: tuple[str, str]) -> float:
        title = METHODS.get(method).title
        found = mine[(mine["method"] == title) & (mine["bits_w"] == row[0]) & (mine["bits_a"] == row[1])]
        return float(found["paper_accuracy"].iloc[0]) if len(found) else math.nan

    values = []
    for row in rows:
        a_value = accuracy(a, _row_key(claim.a.row) if claim.a.row else row)
        if claim.statistic == "difference" and claim.b is not None and b is not None:
            a_value -= accuracy(b, _row_key(claim.b.row) if claim.b.row else row)
        values.append(a_value)
    if not values or any(math.isnan(v) for v in values):
        return None
    return max(values) if claim.at_most is not None else min(values)


# ---------------------------------------------------------------- all claims


def check_claims(frame: pd.DataFrame, claims: Sequence[Claim] | None = None) -> pd.DataFrame:
    """One row per (claim, setup[, method]) with the statistic, its interval, the paper's value, the verdict."""
    claims = load_claims() if claims is None else claims
    outcomes = Outcomes(frame)
    rows = []
    for claim in claims:
        for table in claim.tables:
            for layout in table_setups("table2" if table == "table3" else table):
                for verdict in check_setup(claim, table, layout, outcomes, frame):
                    rows.append(_row(verdict, frame))
    verdicts = pd.DataFrame(rows, columns=COLUMNS)
    if is_rehearsal(frame):
        verdicts["verdict"] = NOT_MEASURED
        verdicts["reason"] = REHEARSAL_REASON
    return verdicts


REHEARSAL_REASON = "not judged: a rehearsal on synthetic data (its accuracies mean nothing)"


def is_rehearsal(frame: pd.DataFrame) -> bool:
    """Runs of a rehearsal scale (synthetic data, tiny budgets): outputs show them, no claim is judged."""
    return not frame.empty and any(SCALES[s].rehearsal for s in frame["scale"].dropna().unique() if s in SCALES)


def _row(v: Verdict, frame: pd.DataFrame) -> dict[str, Any]:
    runs = frame[frame["setup"] == v.setup]
    standin = bool(runs["is_standin"].any()) if not runs.empty else None
    return {
        "claim": v.claim.id,
        "table": v.table,
        "setup": v.setup,
        "method": v.method,
        "statement": v.claim.statement,
        "statistic": v.claim.statistic,
        "rows": " ".join(f"({w},{a})" for w, a in v.rows),
        "worst_row": "" if v.worst_row is None else f"({v.worst_row[0]},{v.worst_row[1]})",
        "ours": v.ours,
        "ci95_low": v.low,
        "ci95_high": v.high,
        "paper": v.paper,
        "threshold": v.claim.threshold_text(v.chance),
        "verdict": v.verdict,
        "reason": v.reason,
        "n": v.n,
        "scale": ", ".join(sorted(set(runs["scale"]))),
        "fidelity": ", ".join(sorted(set(runs["fidelity"]))),
        "data": ", ".join(sorted(set(runs["dataset"]))),
        "is_standin": standin,
    }


# ---------------------------------------------------------------- the report


def _value(row: pd.Series, column: str) -> str:
    value = row[column]
    return "" if value is None or pd.isna(value) else format_statistic(float(value), row["statistic"])


def _cell(row: pd.Series) -> str:
    if pd.isna(row["ours"]):
        return EMPTY
    if row["ci95_low"] == row["ci95_high"]:
        return _value(row, "ours")
    return f"{_value(row, 'ours')} [{_value(row, 'ci95_low')}, {_value(row, 'ci95_high')}]"


def summary_line(verdicts: pd.DataFrame) -> str:
    counts = verdicts["verdict"].value_counts()
    return (
        f"{counts.get(HOLDS, 0)} of {len(verdicts)} checks hold, {counts.get(FAILS, 0)} fail, "
        f"{counts.get(NOT_MEASURED, 0)} not measured"
    )


def claims_document(verdicts: pd.DataFrame, claims: Sequence[Claim] | None = None) -> Document:
    claims = load_claims() if claims is None else claims
    standin = verdicts["is_standin"].eq(True).any()
    data = ", ".join(sorted({d for value in verdicts["data"].dropna() for d in str(value).split(", ") if d}))
    rehearsal = verdicts["reason"].eq(REHEARSAL_REASON).any()
    title = (
        "The paper's claims, not judged: a rehearsal on synthetic data"
        if rehearsal
        else "Do the paper's claims hold? Verdicts on stand-in data (" + data + "), not on the paper's datasets"
        if standin
        else "Do the paper's claims hold?"
    )
    scales = ", ".join(sorted({s for value in verdicts["scale"].dropna() for s in str(value).split(", ") if s}))
    caption = [
        summary_line(verdicts) + (f" (scale {scales})." if scales else "."),
        "Ours: the claim's statistic at its deciding bitwidth row (the worst of the rows it compares), with the "
        "95% interval over the test items its accuracy averages (batches under the official Table 2, images under "
        "the corrected one, tasks in Tables 4 and 5), paired between the compared cells; paper: the "
        "same statistic on the paper's tables"
        + (" (shown for orientation only: stand-in data are not the paper's)." if standin else "."),
    ]
    blocks = []
    for claim in claims:
        mine = verdicts[verdicts["claim"] == claim.id]
        if mine.empty:
            continue
        block = Block(
            title=f"{claim.statement} ({claim.id})",
            row_header="setup",
            groups=[("", 7)],
            columns=["method", "row", "ours [95%]", "paper", "threshold", "verdict", "why"],
        )
        for _, row in mine.iterrows():
            block.add_row(
                row["setup"],
                [
                    METHODS.get(row["method"]).title,
                    row["worst_row"] or EMPTY,
                    _cell(row),
                    _value(row, "paper") or EMPTY,
                    row["threshold"],
                    row["verdict"],
                    row["reason"],
                ],
            )
        blocks.append(block)
    notes = [f"{c.id}: {c.source}. Threshold: {c.why}" for c in claims if (verdicts["claim"] == c.id).any()]
    return Document(title=title, caption=caption, blocks=blocks, label="claims", notes=notes)
