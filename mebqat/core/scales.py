"""The scales a job runs at, declared once (config/README.md, key ``scale``). Their budgets per setup are in
the setup presets (``mebqat/resources/setups/table{2,4,5}.yaml``, key ``scales.<name>``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    real_data: bool
    """True: the paper's datasets; False: the offline stand-ins."""
    description: str
    rehearsal: bool = False
    """True: synthetic data and tiny budgets; tables are titled as a rehearsal and no claim is judged."""


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        Scale(
            "smoke",
            False,
            "plumbing check: tiny budgets on the offline stand-ins, the whole DAG in ~10 minutes on 2 CPU cores",
        ),
        Scale(
            "mini",
            False,
            "the default: budgets on the offline stand-ins long enough for the paper's qualitative "
            "claims, the whole DAG within ~45 minutes on 2 CPU cores",
        ),
        Scale("paper", True, "the real reproduction: the paper's datasets and the authors' hyperparameters (GPUs)"),
        Scale(
            "rehearsal",
            True,
            "the paper's jobs rehearsed on this machine: the paper's networks, batch sizes, optimizers and "
            "schedules on synthetic data of the real datasets' sizes and formats, a few updates per job, each job "
            "killed after its first epoch and resumed (docs/rehearsal.md); its accuracies mean nothing",
            rehearsal=True,
        ),
    )
}
DEFAULT_SCALE = "mini"


def scale_names() -> list[str]:
    return list(SCALES)


def check_scale(name: object) -> str:
    if name not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {name!r}")
    return name
