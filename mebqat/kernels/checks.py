"""Input checks of the few-shot engines: each refuses bad input early, with a message naming the problem.

Everything here runs eagerly, outside ``vmap`` (a tensor cannot be inspected inside it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..data.episode import Episode
from ..models import parameter_kinds
from ..models.layers import NORM_TYPES
from ..quant import BitwidthTask, task_tensor, tasks_from_tensor, validate_task
from .functional import ParamDict

Tasks = torch.Tensor | Sequence[Any]
"""Bitwidth tasks: an integer tensor [n, 2] of codes (FP = 32), or a sequence of Python tasks / pairs
such as ``BitwidthTask(4, None)``, ``(4, None)`` or ``"(4,FP)"``."""


def check_episode(
    episode: Episode, *, batched: bool, model: nn.Module | None = None, dtype: torch.dtype | None = None
) -> int:
    """Check the shapes of one episode (``batched=False``) or of a stacked batch; return the batch size
    (1 for a single episode)."""
    if not isinstance(episode, Episode):
        raise TypeError(f"expected an Episode, got {type(episode).__name__}")
    lead = 1 if batched else 0
    names = Episode._fields
    for name, tensor in zip(names, episode, strict=True):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"episode.{name} must be a tensor, got {type(tensor).__name__}")
    for name in ("support_x", "query_x"):
        if getattr(episode, name).dim() != 4 + lead:
            what = "[B, n, C, H, W] (a stacked batch)" if batched else "[n, C, H, W] (one episode)"
            raise ValueError(f"episode.{name} must have shape {what}, got {tuple(getattr(episode, name).shape)}")
    for x_name, y_name in (("support_x", "support_y"), ("query_x", "query_y")):
        x, y = getattr(episode, x_name), getattr(episode, y_name)
        if y.dim() != 1 + lead or tuple(y.shape) != tuple(x.shape[: 1 + lead]):
            raise ValueError(
                f"episode.{y_name} has shape {tuple(y.shape)} but episode.{x_name} has "
                f"{tuple(x.shape)}: one label per image expected"
            )
        if y.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"episode.{y_name} must hold integer labels, got {y.dtype}")
    if batched and len({t.shape[0] for t in episode}) != 1:
        raise ValueError(f"the episode fields disagree on the batch size: {[tuple(t.shape) for t in episode]}")
    if episode.support_x.shape[-3:] != episode.query_x.shape[-3:]:
        raise ValueError(
            f"support images {tuple(episode.support_x.shape[-3:])} and query images "
            f"{tuple(episode.query_x.shape[-3:])} differ in shape"
        )
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(episode.support_x.shape[-3:]) != tuple(expected):
        raise ValueError(
            f"episode images are {tuple(episode.support_x.shape[-3:])} but the model takes {tuple(expected)}"
        )
    if dtype is not None and (episode.support_x.dtype != dtype or episode.query_x.dtype != dtype):
        raise TypeError(
            f"episode images are {episode.support_x.dtype}/{episode.query_x.dtype} but the parameters are {dtype}"
        )
    return episode.support_x.shape[0] if batched else 1


def episode_ways(episode: Episode, *, batched: bool) -> int:
    """The number of classes N of an episode (batch): labels must be 0..N−1, each present in every support
    set (prototypes need at least one support image per class)."""
    labels = episode.support_y if batched else episode.support_y.unsqueeze(0)
    if labels.numel() == 0:
        raise ValueError("the episode has an empty support set")
    if int(labels.min()) < 0:
        raise ValueError(f"labels must be ≥ 0, got {int(labels.min())}")
    ways = int(labels.max()) + 1
    present = torch.nn.functional.one_hot(labels, ways).sum(-2) > 0
    if not bool(present.all()):
        raise ValueError(f"every class 0..{ways - 1} needs at least one support image in every episode")
    query = episode.query_y
    if query.numel() and (int(query.min()) < 0 or int(query.max()) >= ways):
        raise ValueError(
            f"query labels must lie in 0..{ways - 1} (the support classes), got {int(query.min())}..{int(query.max())}"
        )
    return ways


def check_labels_fit(episode: Episode, model: nn.Module) -> None:
    """Labels must be classifier outputs 0..ways−1 (MAML: the model's classifier has ``ways`` outputs)."""
    ways = getattr(model, "ways", None)
    if not isinstance(ways, int):
        raise TypeError(f"{type(model).__name__} has no classifier ways: not a MAML network of mebqat.models.build")
    for name in ("support_y", "query_y"):
        y = getattr(episode, name)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= ways):
            raise ValueError(
                f"episode.{name} holds labels {int(y.min())}..{int(y.max())} but the classifier has {ways} outputs"
            )


def _family(model: nn.Module) -> str:
    scheme = getattr(model, "scheme", None)
    if scheme is None:
        raise TypeError(f"{type(model).__name__} is not a quantized model built by mebqat.models.build")
    return scheme


def task_codes(tasks: Tasks, count: int | None, model: nn.Module) -> torch.Tensor:
    """Tasks as a long tensor [n, 2] of codes, checked against the model's candidate set (and against
    ``count`` tasks when given)."""
    if isinstance(tasks, torch.Tensor):
        if tasks.dim() != 2 or tasks.shape[1] != 2:
            raise ValueError(
                f"a task tensor must have shape [n, 2] (b_w, b_a codes, FP = 32), got {tuple(tasks.shape)}"
            )
        if tasks.dtype.is_floating_point or tasks.dtype == torch.bool:
            raise TypeError(f"a task tensor must hold integer codes, got {tasks.dtype}")
        parsed = tasks_from_tensor(tasks)
    elif isinstance(tasks, (str, BitwidthTask)) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a tensor [n, 2] or a sequence of tasks, got {tasks!r}")
    else:
        parsed = [BitwidthTask.parse(t) for t in tasks]
    if count is not None and len(parsed) != count:
        raise ValueError(f"{len(parsed)} bitwidth tasks for {count} episodes: one task per episode expected")
    if not parsed:
        raise ValueError("no bitwidth tasks given")
    for task in parsed:
        validate_task(task, _family(model))
    return task_tensor(parsed)


def python_tasks(tasks: Tasks, count: int | None, model: nn.Module) -> list[BitwidthTask]:
    """The same tasks as Python ``BitwidthTask`` values (the sequential engines' form)."""
    return tasks_from_tensor(task_codes(tasks, count, model))


def check_state(model: nn.Module, params: ParamDict, buffers: ParamDict, tasks: Tasks | None = None) -> torch.dtype:
    """``params``/``buffers`` must name exactly the model's parameters and buffers, in one floating dtype,
    with calibrated LSQ activation steps (unless ``tasks`` are given and none of them quantizes
    activations: an FP-trained baseline never calibrates them); returns that dtype."""
    expected, given = set(dict(model.named_parameters())), set(params)
    if expected != given:
        raise ValueError(
            f"params do not match the model: missing {sorted(expected - given)}, unknown {sorted(given - expected)}"
        )
    unknown = set(buffers) - set(dict(model.named_buffers()))
    if unknown:
        raise ValueError(f"buffers {sorted(unknown)} are not buffers of the model")
    dtypes = {p.dtype for p in params.values()}
    if len(dtypes) != 1:
        raise TypeError(f"parameters mix dtypes {sorted(map(str, dtypes))}")
    kinds = parameter_kinds(model)
    uses_activation_steps = tasks is None or any(t.a is not None for t in python_tasks(tasks, None, model))
    for name, p in params.items():
        if uses_activation_steps and kinds.get(name) == "activation_step" and not bool(torch.isfinite(p).all()):
            raise ValueError(
                f"LSQ activation step {name} is not calibrated: call "
                f"mebqat.quant.calibrate_activation_steps(model, x, (2, 2)) first"
            )
    return dtypes.pop()


def tracks_running_stats(model: nn.Module) -> bool:
    return any(getattr(m, "track_running_stats", False) for m in model.modules() if isinstance(m, NORM_TYPES))


def require_transductive(model: nn.Module, what: str) -> None:
    """The MAML family always uses batch statistics (official §3.6, §8.12)."""
    if tracks_running_stats(model):
        raise ValueError(
            f"{what} expects BatchNorm on batch statistics (build the model with "
            f"track_running_stats=False, official §3.6); this model tracks running statistics"
        )
