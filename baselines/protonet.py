"""Prototypical Networks and PN+QAT (Table 5), official §4.6: higher-way training episodes, squared
Euclidean distance to class prototypes, one fixed bitwidth task — (FP,FP) for plain PN, ``train_task`` for
PN+QAT — and BatchNorm with running statistics (inductive at meta-test). One class serves both catalog
names (``pn``, ``pn_qat``): they differ only by the task the job gives it."""

from __future__ import annotations

from mebqat.methods.fewshot import FixedTask
from mebqat.methods.protonet import ProtoFamily


class PrototypicalNetwork(FixedTask, ProtoFamily):
    running_stats = True
