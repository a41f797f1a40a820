"""Prototypical Networks and PN+QAT (Table 5), official §4.6: higher-way training episodes, squared
Euclidean distance to class prototypes, one fixed bitwidth task — (FP,FP) for plain PN, ``train_task`` for
PN+QAT — and BatchNorm with running statistics (inductive at meta-test)."""

from __future__ import annotations

from mebqat.methods.fewshot_base import FixedTaskMethod
from mebqat.methods.registry import register_method


@register_method("pn", kind="fewshot", title="PN")
class PrototypicalNetwork(FixedTaskMethod):
    ALGORITHM = "pn"
    RUNNING_STATS = True


@register_method("pn_qat", kind="fewshot", title="PN+QAT")
class PrototypicalNetworkQAT(FixedTaskMethod):
    ALGORITHM = "pn"
    RUNNING_STATS = True
    NEEDS_TRAIN_TASK = True
