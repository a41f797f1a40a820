"""MEBQAT for bitwidth-class joint adaptation (Tables 4 and 5).

* ``mebqat_maml`` (official §4.3): FOMAML where each episode of the meta-batch draws its own bitwidth
  task from the 73 LSQ candidates; the inner loop and the query gradient run at that task.
* ``mebqat_pn`` (official §4.5): Prototypical Networks where T = 4 bitwidth tasks share each episode.

Both: transductive BatchNorm; ordinary parameters divided by the number of tasks, LSQ steps by the
number of tasks that quantize them; clamp ±10.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import MethodOptions
from .fewshot import RandomTasks
from .maml import MAMLFamily
from .protonet import ProtoFamily


class MEBQATMAML(RandomTasks, MAMLFamily):
    pass


@dataclass(frozen=True)
class MEBQATPNOptions(MethodOptions):
    """The ``method:`` options of ``mebqat_pn`` (their defaults: its entry in :mod:`mebqat.core.catalog`)."""

    tasks_per_step: int
    """T: the random bitwidth tasks that share each training episode."""


class MEBQATPN(RandomTasks, ProtoFamily):
    options_type = MEBQATPNOptions
    options: MEBQATPNOptions

    def tasks_per_step(self) -> int:
        return self.options.tasks_per_step
