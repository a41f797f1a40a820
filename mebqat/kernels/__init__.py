"""The few-shot algorithm core (Tables 4 and 5): FOMAML inner loops and meta-gradients, Prototypical
Network losses, the meta-test routine and the meta-gradient aggregation, each as pure functions over
parameter dicts with a batched (``torch.func.vmap``) engine and a sequential reference engine.

Training loops, optimizers and checkpoints live elsewhere; they call these functions.
"""

from .aggregate import DIVISORS, OFFICIAL_CLAMP, aggregate_meta_gradients, task_usage
from .functional import (
    LEARNED_STEPS_ADAPT_KINDS,
    OFFICIAL_ADAPT_KINDS,
    InnerLoop,
    ParamDict,
    adapt_set,
    call,
    model_state,
    sgd_adapt,
)
from .maml import FomamlResult, fomaml_batched, fomaml_episode, fomaml_sequential
from .metatest import maml_metatest_batched, maml_metatest_sequential, pn_metatest_batched, pn_metatest_sequential
from .protonet import ProtoResult, class_prototypes, pn_batched, pn_sequential, prototype_logits, prototypical_loss
from .stats import mean_ci95

__all__ = [
    "DIVISORS",
    "LEARNED_STEPS_ADAPT_KINDS",
    "OFFICIAL_ADAPT_KINDS",
    "OFFICIAL_CLAMP",
    "FomamlResult",
    "InnerLoop",
    "ParamDict",
    "ProtoResult",
    "adapt_set",
    "aggregate_meta_gradients",
    "call",
    "class_prototypes",
    "fomaml_batched",
    "fomaml_episode",
    "fomaml_sequential",
    "maml_metatest_batched",
    "maml_metatest_sequential",
    "mean_ci95",
    "model_state",
    "pn_batched",
    "pn_metatest_batched",
    "pn_metatest_sequential",
    "pn_sequential",
    "prototype_logits",
    "prototypical_loss",
    "sgd_adapt",
    "task_usage",
]
