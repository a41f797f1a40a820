"""The pure-function core shared by the few-shot engines: parameter dicts, the inner SGD loop.

A model is structure only; its state travels as two dicts, ``params`` and ``buffers``, and every forward
is ``torch.func.functional_call(model, (params, buffers), (x, task))``. That makes each algorithm a pure
function of (params, episode, task), which ``torch.func.vmap`` can map over a batch of episodes and
bitwidth tasks (the batched engines, gradients by ``torch.func.grad``) and a Python loop can call one at a
time (the sequential engines, gradients by plain autograd).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad
from torch.nn import functional as F

from ..core.registry import PARAMETER_KINDS, STEP_KINDS
from ..models import parameter_kinds

ParamDict = dict[str, torch.Tensor]

OFFICIAL_ADAPT_KINDS: frozenset[str] = frozenset({"weight", "bias"})
"""What the authors' inner loops and meta-test fine-tuning update (official §4.3 step 2, §8.4): conv and
linear weights and biases. BN β is excluded on purpose; the LSQ steps are excluded by accident (the SGD
optimizer holds stale step objects, §2.3), which is the ``official`` fidelity."""

LEARNED_STEPS_ADAPT_KINDS: frozenset[str] = OFFICIAL_ADAPT_KINDS | frozenset(STEP_KINDS)
"""The inner-loop set with the step-freezing quirk switched off: weights, biases and LSQ steps (BN β stays
excluded, as the authors intended)."""


def adapt_set(model: nn.Module, kinds: Iterable[str] = OFFICIAL_ADAPT_KINDS) -> frozenset[str]:
    """Names of the parameters of ``model`` whose kind (:func:`mebqat.models.parameter_kinds`) is in ``kinds``."""
    kinds = frozenset(kinds)
    unknown = kinds - set(PARAMETER_KINDS)
    if unknown:
        raise ValueError(f"unknown parameter kinds {sorted(unknown)}; kinds are {list(PARAMETER_KINDS)}")
    return frozenset(name for name, kind in parameter_kinds(model).items() if kind in kinds)


@dataclass(frozen=True)
class InnerLoop:
    """Plain SGD on the support set (no momentum, no weight decay): ``steps`` updates at ``lr`` of exactly
    the parameters named in ``adapt`` (official §4.3 step 2; meta-test fine-tuning §5.2 step 2)."""

    lr: float
    steps: int
    adapt: frozenset[str]

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"inner-loop steps must be an integer ≥ 0, got {self.steps!r}")
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"inner-loop lr must be a finite number > 0, got {self.lr!r}")
        if isinstance(self.adapt, str) or not all(isinstance(name, str) for name in self.adapt):
            raise TypeError(f"adapt must be a set of parameter names, got {self.adapt!r}")
        object.__setattr__(self, "adapt", frozenset(self.adapt))
        if self.steps > 0 and not self.adapt:
            raise ValueError(
                f"the adapt set is empty but {self.steps} inner steps were asked for: name the "
                f"parameters to adapt (e.g. adapt_set(model, OFFICIAL_ADAPT_KINDS))"
            )

    def check(self, params: ParamDict) -> None:
        """Refuse adapt names that are not parameters (a typo would silently freeze a layer)."""
        missing = sorted(self.adapt - set(params))
        if missing:
            raise ValueError(f"adapt names {missing} are not parameters of the model (parameters: {sorted(params)})")


def model_state(model: nn.Module) -> tuple[ParamDict, ParamDict]:
    """(params, buffers) of a model as plain dicts; parameters are detached (the engines differentiate
    through a :data:`Differentiate`, never through the module's autograd leaves)."""
    return detached(dict(model.named_parameters())), dict(model.named_buffers())


def detached(params: ParamDict) -> ParamDict:
    """The parameters cut from any autograd graph: the engines take gradients only through a
    :data:`Differentiate` (``torch.func.grad`` or fresh autograd leaves), and nothing is differentiated
    through the caller's tensors (first order)."""
    return {name: p.detach() for name, p in params.items()}


StepResult = tuple[ParamDict, torch.Tensor, torch.Tensor]
"""(gradients, loss, accuracy) of one episode or one task."""

Objective = Callable[[ParamDict], tuple[torch.Tensor, Any]]
"""params -> (scalar loss, auxiliary outputs)."""
Differentiate = Callable[[Objective, ParamDict], tuple[ParamDict, Any]]
"""(objective, params) -> (d loss / d params for every entry of params, the objective's auxiliary outputs)."""


def functorch_gradient(objective: Objective, params: ParamDict) -> tuple[ParamDict, Any]:
    """The gradient by ``torch.func.grad``: composable with ``vmap`` (the batched engines)."""
    return grad(objective, has_aux=True)(params)


def autograd_gradient(objective: Objective, params: ParamDict) -> tuple[ParamDict, Any]:
    """The same gradient by plain autograd on detached leaves, for the sequential engines: not vmap-able,
    but its first call does not import ``torch._dynamo`` as ``torch.func.grad``'s does (~2 core-seconds of a
    CPU job's start-up). A parameter the loss does not reach gets a zero gradient, as with ``torch.func``."""
    leaves = {name: p.detach().requires_grad_() for name, p in params.items()}
    with torch.enable_grad():
        loss, aux = objective(leaves)
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return (
        {name: torch.zeros_like(p) if g is None else g for (name, p), g in zip(leaves.items(), grads, strict=True)},
        aux,
    )


def stack_results(results: Sequence[StepResult]) -> StepResult:
    """Per-item results of a sequential loop stacked on a new leading dimension, as vmap returns them."""
    grads = {name: torch.stack([r[0][name] for r in results]) for name in results[0][0]}
    return grads, torch.stack([r[1] for r in results]), torch.stack([r[2] for r in results])


def call(model: nn.Module, params: ParamDict, buffers: ParamDict, x: torch.Tensor, task: Any) -> torch.Tensor:
    """``model(x, task)`` evaluated at ``params``/``buffers``."""
    return functional_call(model, (params, buffers), (x, task))


def cross_entropy_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and the fraction of correct arg-max predictions (a tensor, vmap-safe)."""
    loss = F.cross_entropy(logits, labels)
    return loss, (logits.argmax(-1) == labels).to(logits.dtype).mean()


def sgd_adapt(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    x: torch.Tensor,
    y: torch.Tensor,
    task: Any,
    inner: InnerLoop,
    differentiate: Differentiate = functorch_gradient,
) -> ParamDict:
    """``inner.steps`` plain SGD steps of the support cross-entropy, fake-quantized at ``task`` (BN on
    support-batch statistics), on the parameters in ``inner.adapt``; every other parameter is returned
    unchanged (the same tensor). Official §4.3 step 2 and §5.2 step 2.

    Nothing is differentiated through the returned parameters: each inner gradient is a fresh gradient
    of the current point (``differentiate``), so a later gradient at the adapted point is first order.
    """
    fast = {name: params[name] for name in params if name in inner.adapt}
    frozen = {name: p for name, p in params.items() if name not in inner.adapt}

    def support_loss(fast_params: ParamDict) -> tuple[torch.Tensor, tuple[()]]:
        return F.cross_entropy(call(model, {**frozen, **fast_params}, buffers, x, task), y), ()

    for _ in range(inner.steps):
        grads, _ = differentiate(support_loss, fast)
        fast = {name: p - inner.lr * grads[name] for name, p in fast.items()}
    return {name: fast.get(name, p) for name, p in params.items()}


@contextmanager
def module_mode(model: nn.Module, training: bool) -> Iterator[None]:
    """Put every submodule in train (True) or eval (False) mode, and restore each one's flag after."""
    saved = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield
    finally:
        for module, flag in saved:
            module.training = flag
