"""Prototypical Networks with bitwidth tasks (official §4.5 MEBQAT-PN, §4.6 PN / PN+QAT).

One train-mode forward on concat(support, query), so BN statistics cover both (as the authors' code);
prototypes are the class means of the support embeddings; logits are minus the squared Euclidean
distance; the loss is the query cross-entropy.

* :func:`pn_batched`: MEBQAT-PN, T bitwidth tasks on one episode in one ``vmap`` over the tasks
  (transductive BN only: ``vmap`` cannot update BN running statistics in place).
* :func:`pn_sequential`: the reference loop over the tasks; it also serves PN / PN+QAT, whose BN tracks
  running statistics: each task's forward starts from the given buffers and updates a copy of them, and
  the result carries the copy of the last task (one task for PN / PN+QAT; with several, the last wins, as
  the authors' code would do, §4.5).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn
from torch.func import vmap
from torch.nn import functional as F

from ..data.episode import Episode
from .checks import Tasks, check_episode, check_state, episode_ways, python_tasks, task_codes, tracks_running_stats
from .functional import (
    Differentiate,
    ParamDict,
    StepResult,
    autograd_gradient,
    call,
    cross_entropy_and_accuracy,
    detached,
    functorch_gradient,
    module_mode,
    stack_results,
)


class ProtoResult(NamedTuple):
    grads: ParamDict
    """Per-task gradients, each shaped [T, *parameter shape]."""
    loss: torch.Tensor
    """[T] query cross-entropy."""
    accuracy: torch.Tensor
    """[T] query accuracy (fraction)."""
    buffers: ParamDict
    """The buffers after the step: updated BN running statistics (of the last task), or the given ones."""


def class_prototypes(support_z: torch.Tensor, support_y: torch.Tensor, ways: int) -> torch.Tensor:
    """[ways, D] mean support embedding of each class (labels 0..ways−1, in any order)."""
    onehot = F.one_hot(support_y, ways).to(support_z.dtype)  # [n, ways]
    return (onehot.T @ support_z) / onehot.sum(0).unsqueeze(1)


def prototype_logits(query_z: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """[m, ways] logits −‖z_q − c_n‖², in the expanded form ‖z‖² − 2 z·c + ‖c‖², which avoids the
    [m, ways, D] difference tensor (1600-dim MiniImageNet embeddings, 30-way training episodes)."""
    squared = (
        (query_z * query_z).sum(1, keepdim=True)
        - 2 * query_z @ prototypes.T
        + (prototypes * prototypes).sum(1).unsqueeze(0)
    )
    return -squared


def prototypical_loss(
    support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, query_y: torch.Tensor, ways: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean query cross-entropy of softmax(−d²), query accuracy); official §4.5 steps 3–5."""
    logits = prototype_logits(query_z, class_prototypes(support_z, support_y, ways))
    return cross_entropy_and_accuracy(logits, query_y)


def episode_objective(
    model: nn.Module, params: ParamDict, buffers: ParamDict, episode: Episode, task: Any, ways: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, accuracy) of one episode at one task: one forward on concat(support, query), in whatever
    mode the model is in (train: BN on the episode's statistics)."""
    n_support = episode.support_x.shape[0]
    z = call(model, params, buffers, torch.cat([episode.support_x, episode.query_x]), task)
    return prototypical_loss(z[:n_support], episode.support_y, z[n_support:], episode.query_y, ways)


def _task_step(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episode: Episode,
    task: Any,
    ways: int,
    differentiate: Differentiate,
) -> StepResult:
    def objective(p: ParamDict) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        loss, accuracy = episode_objective(model, p, buffers, episode, task, ways)
        return loss, (loss.detach(), accuracy)

    grads, (loss, accuracy) = differentiate(objective, params)
    return grads, loss, accuracy


def _prepare(
    model: nn.Module, params: ParamDict, buffers: ParamDict, episode: Episode, tasks: Tasks
) -> tuple[ParamDict, int]:
    dtype = check_state(model, params, buffers, tasks)
    check_episode(episode, batched=False, model=model, dtype=dtype)
    return detached(params), episode_ways(episode, batched=False)


def pn_batched(model: nn.Module, params: ParamDict, buffers: ParamDict, episode: Episode, tasks: Tasks) -> ProtoResult:
    """Batched engine (MEBQAT-PN): T tasks ([T, 2] tensor or Python tasks) on one episode, one vmap."""
    if tracks_running_stats(model):
        raise ValueError(
            "pn_batched cannot update BN running statistics inside vmap; use pn_sequential "
            "for models built with track_running_stats=True (PN, PN+QAT)"
        )
    params, ways = _prepare(model, params, buffers, episode, tasks)
    codes = task_codes(tasks, None, model).to(episode.support_x.device)
    with module_mode(model, True):
        grads, loss, accuracy = vmap(
            lambda task: _task_step(model, params, buffers, episode, task, ways, functorch_gradient)
        )(codes)
    return ProtoResult(grads, loss, accuracy, buffers)


def pn_sequential(
    model: nn.Module, params: ParamDict, buffers: ParamDict, episode: Episode, tasks: Tasks
) -> ProtoResult:
    """Sequential engine: a loop over the tasks with plain autograd (a train-mode forward of a model with
    running statistics updates the buffers in place, which torch.func transforms refuse); where the model
    tracks BN running statistics (PN, PN+QAT) each task updates a fresh copy of ``buffers``, and the last
    copy is returned."""
    params, ways = _prepare(model, params, buffers, episode, tasks)
    running = tracks_running_stats(model)
    results, new_buffers = [], buffers
    with module_mode(model, True):
        for task in python_tasks(tasks, None, model):
            # functional_call writes the running-statistics update into the buffers it is given
            new_buffers = {name: b.clone() for name, b in buffers.items()} if running else buffers
            results.append(_task_step(model, params, new_buffers, episode, task, ways, autograd_gradient))
    return ProtoResult(*stack_results(results), new_buffers)
