"""First-order MAML with a bitwidth task per episode (official §4.3 MEBQAT-MAML, §4.4 FOMAML(+QAT)).

Per episode i with bitwidth task τ_i: ``inner.steps`` SGD steps on the support set at τ_i (BN on support
statistics) of the parameters in ``inner.adapt``, then the query cross-entropy at the adapted point θ'_i
(BN on query statistics) and its gradient g_i = ∇_θ' L_q(θ'_i) with respect to *every* parameter, taken
at θ'_i with no second-order terms. The engines return the per-episode g_i, query losses and accuracies;
the caller aggregates them (:func:`mebqat.kernels.aggregate.aggregate_meta_gradients`) and steps.

* :func:`fomaml_batched`: one ``torch.func.vmap`` over the meta-batch, each episode with its own task
  (a tensor [B, 2]).
* :func:`fomaml_sequential`: the reference, a Python loop with Python tasks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn
from torch.func import vmap

from ..data.episode import Episode, unstack_episodes
from .checks import Tasks, check_episode, check_labels_fit, check_state, python_tasks, require_transductive, task_codes
from .functional import (
    Differentiate,
    InnerLoop,
    ParamDict,
    StepResult,
    autograd_gradient,
    call,
    cross_entropy_and_accuracy,
    detached,
    functorch_gradient,
    sgd_adapt,
    stack_results,
)


class FomamlResult(NamedTuple):
    grads: ParamDict
    """Per-episode first-order meta-gradients, each shaped [B, *parameter shape]."""
    query_loss: torch.Tensor
    """[B] query cross-entropy at the adapted parameters."""
    query_accuracy: torch.Tensor
    """[B] query accuracy (fraction) at the adapted parameters."""


def fomaml_episode(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episode: Episode,
    task: Any,
    inner: InnerLoop,
    differentiate: Differentiate = functorch_gradient,
) -> StepResult:
    """(g, query loss, query accuracy) of one episode at one task (Python task or tensor [2]); official
    §4.3 "For each episode i", steps 2, 4 and 5. Pure: vmap-able over (episode, task) with the default
    ``differentiate``."""
    adapted = sgd_adapt(model, params, buffers, episode.support_x, episode.support_y, task, inner, differentiate)

    def query_objective(p: ParamDict) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        loss, accuracy = cross_entropy_and_accuracy(call(model, p, buffers, episode.query_x, task), episode.query_y)
        return loss, (loss.detach(), accuracy)

    grads, (loss, accuracy) = differentiate(query_objective, adapted)
    return grads, loss, accuracy


def _check(
    model: nn.Module, params: ParamDict, buffers: ParamDict, episodes: Episode, inner: InnerLoop, tasks: Tasks
) -> int:
    require_transductive(model, "FOMAML")
    dtype = check_state(model, params, buffers, tasks)
    inner.check(params)
    count = check_episode(episodes, batched=True, model=model, dtype=dtype)
    check_labels_fit(episodes, model)
    return count


def fomaml_batched(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episodes: Episode,
    tasks: Tasks,
    inner: InnerLoop,
    *,
    chunk_size: int | None = None,
) -> FomamlResult:
    """Batched engine: ``vmap`` over a stacked meta-batch of B episodes and their B tasks ([B, 2] tensor
    or B Python tasks). ``chunk_size`` evaluates the vmap in chunks of that many episodes (memory; on a
    CPU small chunks also keep the working set in cache)."""
    count = _check(model, params, buffers, episodes, inner, tasks)
    codes = task_codes(tasks, count, model).to(episodes.support_x.device)
    params = detached(params)

    def one(episode: Episode, task: torch.Tensor) -> StepResult:
        return fomaml_episode(model, params, buffers, episode, task, inner)

    grads, loss, accuracy = vmap(one, chunk_size=chunk_size)(episodes, codes)
    return FomamlResult(grads, loss, accuracy)


def fomaml_sequential(
    model: nn.Module, params: ParamDict, buffers: ParamDict, episodes: Episode, tasks: Tasks, inner: InnerLoop
) -> FomamlResult:
    """Sequential reference engine: the same computation, one episode at a time with Python tasks and plain
    autograd."""
    count = _check(model, params, buffers, episodes, inner, tasks)
    params = detached(params)
    return FomamlResult(
        *stack_results(
            [
                fomaml_episode(model, params, buffers, episode, task, inner, autograd_gradient)
                for episode, task in zip(unstack_episodes(episodes), python_tasks(tasks, count, model), strict=True)
            ]
        )
    )
