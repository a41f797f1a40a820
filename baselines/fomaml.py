"""FOMAML and FOMAML+QAT (Table 4), official §4.4: first-order MAML at one fixed bitwidth task — (FP,FP)
for plain FOMAML, ``train_task`` for FOMAML+QAT (one model per bitwidth) — transductive BatchNorm, every
gradient divided by the meta-batch size."""

from __future__ import annotations

from mebqat.methods.fewshot_base import FixedTaskMethod
from mebqat.methods.registry import register_method


@register_method("fomaml", kind="fewshot", title="FOMAML")
class FOMAML(FixedTaskMethod):
    ALGORITHM = "maml"


@register_method("fomaml_qat", kind="fewshot", title="FOMAML+QAT")
class FOMAMLQAT(FixedTaskMethod):
    ALGORITHM = "maml"
    NEEDS_TRAIN_TASK = True
