"""MEBQAT for bitwidth-class joint adaptation (Tables 4 and 5).

* ``mebqat_maml`` (official §4.3): FOMAML where each episode of the meta-batch draws its own bitwidth
  task from the 73 LSQ candidates; the inner loop and the query gradient run at that task.
* ``mebqat_pn`` (official §4.5): Prototypical Networks where T = 4 bitwidth tasks share each episode.

Both: transductive BatchNorm; ordinary parameters divided by the number of tasks, LSQ steps by the
number of tasks that quantize them; clamp ±10.
"""

from __future__ import annotations

from .fewshot import RandomTasks
from .maml import MAMLFamily
from .protonet import ProtoFamily


class MEBQATMAML(RandomTasks, MAMLFamily):
    pass


class MEBQATPN(RandomTasks, ProtoFamily):
    pass
