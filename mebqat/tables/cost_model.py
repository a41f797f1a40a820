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
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..engine.config import load_table_setups
from ..methods import get_method
from ..models import build, parameter_counts
from ..quant import bitwidth_candidates
from .layout import SetupLayout, table_setups

DEDICATED, ADAPTIVE, MEBQAT = "dedicated", "adaptive", "mebqat"
ROLES = (DEDICATED, ADAPTIVE, MEBQAT)
PAPER_METHOD = {DEDICATED: "Dedicated QAT", ADAPTIVE: "AdaBits/ApDNN", MEBQAT: "MEBQAT"}


@dataclass(frozen=True)
class ModelSize:
    params: int
    bn_params: int

    @property
    def bn_share(self) -> float:
        return self.bn_params / self.params


@functools.cache
def model_size(model: str, options: tuple[tuple[str, object], ...] = (), scheme: str | None = None) -> ModelSize:
    """M and the BatchNorm affine count of a registered architecture (built on the CPU, no data)."""
    kwargs = dict(options)
    if scheme is not None:
        kwargs["scheme"] = scheme
    counts = parameter_counts(build(model, **kwargs))
    return ModelSize(counts["params"], counts["bn_params"])


def storage(role: str, n: int, m: float, r: float) -> float:
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
    size: ModelSize
    methods: dict[str, str]
    """role → method name of this setup (dedicated → qat, adaptive → adabits/apdnn, mebqat → mebqat)."""

    @property
    def m(self) -> int:
        return self.size.params

    @property
    def r(self) -> float:
        return self.size.bn_share

    def title(self, role: str) -> str:
        return get_method(self.methods[role]).title

    def storage(self, role: str) -> float:
        return storage(role, self.n, self.m, self.r)

    def backprops(self, role: str) -> float:
        return backprops(role, self.n, self.t)


def _roles(layout: SetupLayout) -> dict[str, str]:
    roles = {}
    for method in layout.methods:
        role = DEDICATED if method == "qat" else MEBQAT if method == "mebqat" else ADAPTIVE
        if role in roles:
            raise ValueError(f"setup {layout.name!r}: two methods ({roles[role]}, {method}) for the {role} role")
        roles[role] = method
    missing = set(ROLES) - set(roles)
    if missing:
        raise ValueError(f"setup {layout.name!r} has no method for {sorted(missing)}")
    return roles


def tasks_per_update(layout: SetupLayout) -> int:
    setup = load_table_setups(layout.table)["setups"][layout.name]
    options = setup.get("per_method", {}).get("mebqat", {}).get("method", {})
    return int(options.get("tasks_per_step", get_method("mebqat").cls.OPTIONS["tasks_per_step"]))


@functools.cache
def setup_costs() -> tuple[SetupCosts, ...]:
    """The cost model of every Table 2 setup, with the architectures built at the paper's width."""
    return tuple(SetupCosts(layout=layout, n=len(bitwidth_candidates(layout.quantizer)), t=tasks_per_update(layout),
                            size=model_size(layout.model, layout.model_options, layout.quantizer),
                            methods=_roles(layout))
                 for layout in table_setups("table2"))
