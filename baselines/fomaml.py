"""FOMAML and FOMAML+QAT (Table 4), official §4.4: first-order MAML at one fixed bitwidth task — (FP,FP)
for plain FOMAML, ``train_task`` for FOMAML+QAT (one model per bitwidth) — transductive BatchNorm, every
gradient divided by the meta-batch size. One class serves both catalog names (``fomaml``, ``fomaml_qat``):
they differ only by the task the job gives it."""

from __future__ import annotations

from mebqat.methods.fewshot import FixedTask
from mebqat.methods.maml import MAMLFamily


class FOMAML(FixedTask, MAMLFamily):
    pass
