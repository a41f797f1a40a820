"""Meta-test: per-(bitwidth, episode) query accuracies of one model (official §5.2 MAML family, §5.3 PN
family). The same episodes are used for every bitwidth, so the accuracies are paired across bitwidths
(and across methods evaluated on the same episode set).

* MAML family (:func:`maml_metatest_batched` / :func:`maml_metatest_sequential`): ``inner.steps`` plain
  SGD steps on the support set at the tested task (BN on support statistics, only ``inner.adapt``
  moves), then query inference at the tested task with BN on query-batch statistics (transductive).
  The authors' code infers with integer weight/activation codes rescaled by the steps, which equals
  fake quantization up to the 1e−6 added to the step and float rounding (official §2.2); here the query
  forward is the fake-quantized one.
* PN family (:func:`pn_metatest_batched` / :func:`pn_metatest_sequential`): one no-grad eval-mode forward
  on concat(support, query) at the tested task; BN uses the episode's statistics when the model does not
  track running statistics (MEBQAT-PN) and the running statistics otherwise (PN, PN+QAT).

Episodes come as one stacked :class:`~mebqat.data.episode.Episode` batch or an iterable of them; results
are a tensor [n_tasks, n_episodes] of accuracies (fractions), episodes in the order given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.func import vmap

from ..data.episode import Episode, unstack_episodes
from .checks import (
    Tasks,
    check_episode,
    check_labels_fit,
    check_state,
    episode_ways,
    python_tasks,
    require_transductive,
    task_codes,
)
from .functional import (
    Differentiate,
    InnerLoop,
    ParamDict,
    autograd_gradient,
    call,
    cross_entropy_and_accuracy,
    detached,
    functorch_gradient,
    module_mode,
    sgd_adapt,
)
from .protonet import episode_objective

EpisodeAccuracy = Callable[[Episode, Any], torch.Tensor]
"""(one episode, one task) -> its query accuracy (0-dim tensor)."""

Prepare = Callable[[ParamDict, Episode, Any], ParamDict]
"""(params, one episode, one task) -> parameter entries to replace for that run, e.g. quantizer steps
booted from the episode (FP-trained baselines, :mod:`mebqat.kernels.boot`). Must be pure (vmap-safe)."""


def _prepared(params: ParamDict, prepare: Prepare | None, episode: Episode, task: Any) -> ParamDict:
    return params if prepare is None else {**params, **prepare(params, episode, task)}


def maml_episode_accuracy(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episode: Episode,
    task: Any,
    inner: InnerLoop,
    differentiate: Differentiate = functorch_gradient,
) -> torch.Tensor:
    """Query accuracy after fine-tuning on the support set (official §5.2 "Per run", steps 2–3); vmap-able
    with the default ``differentiate``."""
    adapted = sgd_adapt(model, params, buffers, episode.support_x, episode.support_y, task, inner, differentiate)
    with torch.no_grad():
        logits = call(model, adapted, buffers, episode.query_x, task)
    return finite_or_nan(cross_entropy_and_accuracy(logits, episode.query_y)[1], logits)


def pn_episode_accuracy(
    model: nn.Module, params: ParamDict, buffers: ParamDict, episode: Episode, task: Any, ways: int
) -> torch.Tensor:
    """Query accuracy of the prototype classifier (official §5.3); call it with the model in eval mode."""
    with torch.no_grad():
        loss, accuracy = episode_objective(model, params, buffers, episode, task, ways)
    return finite_or_nan(accuracy, loss)


def finite_or_nan(accuracy: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """The accuracy, or NaN when the outputs it came from are not finite (an arg-max of NaN logits would
    look like a real accuracy); vmap-safe, so the caller checks once after the whole meta-test."""
    return torch.where(torch.isfinite(outputs).all(), accuracy, torch.full_like(accuracy, float("nan")))


def _batches(episodes: Episode | Iterable[Episode]) -> list[Episode]:
    batches = [episodes] if isinstance(episodes, Episode) else list(episodes)
    if not batches:
        raise ValueError("no episodes to meta-test")
    return batches


def _run_batched(
    accuracy: EpisodeAccuracy, batches: list[Episode], codes: torch.Tensor, episode_chunk: int, task_chunk: int | None
) -> torch.Tensor:
    if isinstance(episode_chunk, bool) or not isinstance(episode_chunk, int) or episode_chunk < 1:
        raise ValueError(f"episode_chunk must be an integer ≥ 1, got {episode_chunk!r}")
    over_episodes = vmap(accuracy, in_dims=(0, None))
    over_tasks_and_episodes = vmap(over_episodes, in_dims=(None, 0), chunk_size=task_chunk)
    columns = []
    for batch in batches:
        for start in range(0, batch.support_x.shape[0], episode_chunk):
            chunk = Episode(*(field[start : start + episode_chunk] for field in batch))
            columns.append(over_tasks_and_episodes(chunk, codes.to(chunk.support_x.device)))
    return torch.cat(columns, dim=1)


def _run_sequential(accuracy: EpisodeAccuracy, batches: list[Episode], tasks: list[Any]) -> torch.Tensor:
    episodes = [episode for batch in batches for episode in unstack_episodes(batch)]
    return torch.stack([torch.stack([accuracy(episode, task) for episode in episodes]) for task in tasks])


def _maml_setup(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episodes: Episode | Iterable[Episode],
    inner: InnerLoop,
    prepare: Prepare | None,
    differentiate: Differentiate,
) -> tuple[list[Episode], EpisodeAccuracy]:
    require_transductive(model, "MAML meta-test")
    dtype = check_state(model, params, buffers)
    inner.check(params)
    batches = _batches(episodes)
    for batch in batches:
        check_episode(batch, batched=True, model=model, dtype=dtype)
        check_labels_fit(batch, model)
    params = detached(params)
    return batches, lambda episode, task: maml_episode_accuracy(
        model, _prepared(params, prepare, episode, task), buffers, episode, task, inner, differentiate
    )


def maml_metatest_batched(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episodes: Episode | Iterable[Episode],
    tasks: Tasks,
    inner: InnerLoop,
    *,
    episode_chunk: int = 4,
    task_chunk: int | None = None,
    prepare: Prepare | None = None,
) -> torch.Tensor:
    """[n_tasks, n_episodes] accuracies; vmap over the tasks and over chunks of ``episode_chunk`` episodes
    (``task_chunk`` tasks at a time, default all), which bounds the memory: the peak holds the activations
    of ``episode_chunk × task_chunk`` query sets at once (Omniglot 20-way: ~60 MB each in float32)."""
    batches, accuracy = _maml_setup(model, params, buffers, episodes, inner, prepare, functorch_gradient)
    return _run_batched(accuracy, batches, task_codes(tasks, None, model), episode_chunk, task_chunk)


def maml_metatest_sequential(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episodes: Episode | Iterable[Episode],
    tasks: Tasks,
    inner: InnerLoop,
    *,
    prepare: Prepare | None = None,
) -> torch.Tensor:
    """The reference: loops over tasks (bitwidth-major, as the authors' code) and episodes, plain autograd."""
    batches, accuracy = _maml_setup(model, params, buffers, episodes, inner, prepare, autograd_gradient)
    return _run_sequential(accuracy, batches, python_tasks(tasks, None, model))


def _pn_setup(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episodes: Episode | Iterable[Episode],
    prepare: Prepare | None = None,
) -> tuple[list[Episode], EpisodeAccuracy]:
    dtype = check_state(model, params, buffers)
    batches = _batches(episodes)
    for batch in batches:
        check_episode(batch, batched=True, model=model, dtype=dtype)
    ways = {episode_ways(batch, batched=True) for batch in batches}
    if len(ways) != 1:
        raise ValueError(f"the episode batches have different numbers of ways: {sorted(ways)}")
    n_ways = ways.pop()
    params = detached(params)
    return batches, lambda episode, task: pn_episode_accuracy(
        model, _prepared(params, prepare, episode, task), buffers, episode, task, n_ways
    )


def pn_metatest_batched(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episodes: Episode | Iterable[Episode],
    tasks: Tasks,
    *,
    episode_chunk: int = 4,
    task_chunk: int | None = None,
    prepare: Prepare | None = None,
) -> torch.Tensor:
    """[n_tasks, n_episodes] accuracies; vmap over tasks and chunks of episodes, model in eval mode."""
    batches, accuracy = _pn_setup(model, params, buffers, episodes, prepare)
    with module_mode(model, False):
        return _run_batched(accuracy, batches, task_codes(tasks, None, model), episode_chunk, task_chunk)


def pn_metatest_sequential(
    model: nn.Module,
    params: ParamDict,
    buffers: ParamDict,
    episodes: Episode | Iterable[Episode],
    tasks: Tasks,
    *,
    prepare: Prepare | None = None,
) -> torch.Tensor:
    """The reference: loops over tasks and episodes, model in eval mode."""
    batches, accuracy = _pn_setup(model, params, buffers, episodes, prepare)
    with module_mode(model, False):
        return _run_sequential(accuracy, batches, python_tasks(tasks, None, model))
