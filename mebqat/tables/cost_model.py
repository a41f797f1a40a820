"""Table 3's cost model (official-mebqat.md §9.3–§9.4) evaluated with the real numbers of each Table 2
setup: N = the number of bitwidth settings of its quantizer family (75 DoReFa, 73 SAT), M = the parameter
count (weights, biases, BatchNorm affine) and r = the BatchNorm share of the architecture built at the
paper's width, T = MEBQAT's bitwidth tasks per update.

Per update and per model:            backprops      storage (parameters)
  dedicated QAT (one model per b)    1              N·M
  AdaBits / ApDNN (switchable BN)    N              (1 + (N−1)·r)·M
  MEBQAT                             T              M
Headline savings: 1 − T/N fewer backprops than AdaBits/ApDNN, 1 − 1/N less storage than dedicated QAT,
N/T times fewer backprops (the abstract's 94.7%, 98.7% and "up to 18×" with N = 75, T = 4).

Each method's role comes from its registry entry (``cost_role``). M and r are what the setup's jobs
measured of the paper-width architecture (``architecture.paper_width`` in metrics.json), so building the
tables needs no torch; without a run of the setup they are unknown and their cells stay empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..core.config import load_table_setups
from ..core.registry import COST_ROLES, METHODS
from ..core.tasks import bitwidth_candidates
from .layout import SetupLayout, table_setups

DEDICATED, ADAPTIVE, MEBQAT = "dedicated", "adaptive", "mebqat"
ROLES = COST_ROLES
PAPER_METHOD = {DEDICATED: "Dedicated QAT", ADAPTIVE: "AdaBits/ApDNN", MEBQAT: "MEBQAT"}


@dataclass(frozen=True)
class ModelSize:
    params: int
    bn_params: int

    @property
    def bn_share(self) -> float:
        return self.bn_params / self.params


def storage(role: str, n: int, m: float | None, r: float | None) -> float | None:
    if m is None or r is None:
        return None
    if role == DEDICATED:
        return n * m
    if role == ADAPTIVE:
        return (1 + (n - 1) * r) * m
    if role == MEBQAT:
        return m
    raise ValueError(f"unknown cost role {role!r}; known: {', '.join(ROLES)}")


def backprops(role: str, n: int, t: int) -> float:
    if role == DEDICATED:
        return 1
    if role == ADAPTIVE:
        return n
    if role == MEBQAT:
        return t
    raise ValueError(f"unknown cost role {role!r}; known: {', '.join(ROLES)}")


STORAGE_FORMULA = {DEDICATED: "N·M", ADAPTIVE: "(1 + (N−1)·r)·M", MEBQAT: "M"}
BACKPROP_FORMULA = {DEDICATED: "1 (per model; N models)", ADAPTIVE: "N", MEBQAT: "T"}


def backprop_saving(n: int, t: int) -> float:
    """MEBQAT against AdaBits/ApDNN: 1 − T/N."""
    return 1 - t / n


def storage_saving(n: int) -> float:
    """MEBQAT against dedicated QAT: 1 − 1/N."""
    return 1 - 1 / n


def backprop_ratio(n: int, t: int) -> float:
    """How many times fewer backprops per update MEBQAT needs than AdaBits/ApDNN: N/T."""
    return n / t


@dataclass(frozen=True)
class SetupCosts:
    layout: SetupLayout
    n: int
    t: int
    size: ModelSize | None
    """The paper-width architecture as the setup's jobs measured it; None without a run."""
    methods: dict[str, str]
    """role → method name of this setup (dedicated → qat, adaptive → adabits/apdnn, mebqat → mebqat)."""

    @property
    def m(self) -> int | None:
        return None if self.size is None else self.size.params

    @property
    def r(self) -> float | None:
        return None if self.size is None else self.size.bn_share

    def title(self, role: str) -> str:
        return METHODS.get(self.methods[role]).title

    def storage(self, role: str) -> float | None:
        return storage(role, self.n, self.m, self.r)

    def backprops(self, role: str) -> float:
        return backprops(role, self.n, self.t)


def _roles(layout: SetupLayout) -> dict[str, str]:
    roles: dict[str, str] = {}
    for method in layout.methods:
        role = METHODS.get(method).cost_role
        if role is None:
            continue
        if role in roles:
            raise ValueError(f"setup {layout.name!r}: two methods ({roles[role]}, {method}) for the {role} role")
        roles[role] = method
    missing = set(ROLES) - set(roles)
    if missing:
        raise ValueError(f"setup {layout.name!r} has no method for {sorted(missing)}")
    return roles


def tasks_per_update(layout: SetupLayout, method: str) -> int:
    """T: the setup's (paper-scale) tasks per step of its MEBQAT-role method."""
    setup = load_table_setups(layout.table)["setups"][layout.name]
    options = setup.get("per_method", {}).get(method, {}).get("method", {})
    return int(options.get("tasks_per_step", METHODS.get(method).options["tasks_per_step"]))


def measured_sizes(frame: pd.DataFrame) -> dict[str, ModelSize]:
    """Per setup, the paper-width architecture its jobs measured (they agree: it is one architecture)."""
    sizes: dict[str, ModelSize] = {}
    if frame.empty or "paper_params" not in frame:
        return sizes
    known = frame.dropna(subset=["paper_params"]).drop_duplicates(["setup", "paper_params", "paper_bn_params"])
    for setup, group in known.groupby("setup"):
        if len(group) > 1:
            raise ValueError(
                f"jobs of setup {setup!r} measured different paper-width architectures: "
                f"{', '.join(group['path'])}; build the tables from runs of one code version"
            )
        sizes[setup] = ModelSize(int(group["paper_params"].iloc[0]), int(group["paper_bn_params"].iloc[0]))
    return sizes


def setup_costs(frame: pd.DataFrame) -> tuple[SetupCosts, ...]:
    """The cost model of every Table 2 setup: N and T from the registries and presets, M and r from runs."""
    sizes = measured_sizes(frame)
    result = []
    for layout in table_setups("table2"):
        roles = _roles(layout)
        result.append(
            SetupCosts(
                layout=layout,
                n=len(bitwidth_candidates(layout.quantizer)),
                t=tasks_per_update(layout, roles[MEBQAT]),
                size=sizes.get(layout.name),
                methods=roles,
            )
        )
    return tuple(result)
