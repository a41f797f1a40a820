"""The engine of the Table 4/5 methods: episodic meta-training, per-epoch validation on a fixed set of
meta-validation tasks (checkpoint selection on the validation split, as the authors did), checkpoints
every epoch with exact resume, and the meta-test on the fixed, seeded set of test tasks shared by every
method and bitwidth of a setup.

``train(config, out)`` and ``evaluate(out)`` mirror :mod:`mebqat.engine.supervised`; ``evaluate`` also
writes ``episode_accuracies.npz`` (accuracy of every (bitwidth, test episode) pair) so that methods can be
compared pairwise on the same episodes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.func import vmap

from ..data import EpisodeSampler, FixedTaskSet, fixed_test_tasks, load_fewshot
from ..data.episode import Episode
from ..fewshot import (LEARNED_STEPS_ADAPT_KINDS, OFFICIAL_ADAPT_KINDS, InnerLoop, aggregate_meta_gradients,
                       adapt_set, fomaml_batched, fomaml_sequential, maml_metatest_batched,
                       maml_metatest_sequential, mean_ci95, model_state, pn_batched, pn_metatest_batched,
                       pn_metatest_sequential, pn_sequential, task_usage)
from ..fewshot.boot import boot_activation_steps, boot_weight_steps, weight_step_references
from ..fewshot.functional import module_mode
from ..fewshot.metatest import maml_episode_accuracy, pn_episode_accuracy
from ..methods import get_method
from ..methods.fewshot_base import FewShotMethod
from ..models import parameter_kinds
from ..quant import BitwidthTask, calibrate_activation_steps, task_tensor
from .config import evaluation_tasks
from .counters import PassCounter
from .optim import build_optimizer, build_scheduler
from .metrics import finished_run, format_results, metrics_record, result_row
from .provenance import config_hash
from .progress import TrainingProgress, apply_update
from ..atomic import atomic_write
from .rundir import RunDir, job_logger, write_json
from .runtime import DivergenceError, derived_seed, seed_everything, select_device

# ---------------------------------------------------------------- data


def _split(config: Mapping[str, Any], split: str):
    data = config["data"]
    return load_fewshot(data["name"], split, data["root"], download=data["download"])


def _fixed_tasks(config: Mapping[str, Any], split: str, count: int) -> FixedTaskSet:
    data = config["data"]
    return fixed_test_tasks(_split(config, split), data["ways"], data["shots"], data["queries"], num_tasks=count,
                            seed=data["test_seed"])


def _train_sampler(config: Mapping[str, Any], split, seed: int) -> EpisodeSampler:
    data = config["data"]
    return EpisodeSampler(split, data["train_ways"] or data["ways"], data["shots"],
                          data["train_queries"] or data["queries"], seed=seed)


# ---------------------------------------------------------------- pieces of a step


def inner_adapt_kinds(method: FewShotMethod) -> frozenset[str]:
    """What MAML inner loops and meta-test fine-tuning update: weights and biases (BN β never), plus the
    LSQ steps unless the official step-freezing quirk is on."""
    return OFFICIAL_ADAPT_KINDS if method.switches.get("frozen_steps_in_inner_loops", True) \
        else LEARNED_STEPS_ADAPT_KINDS


def _device_episode(episode: Episode, device: torch.device, dtype: torch.dtype) -> Episode:
    return Episode(episode.support_x.to(device, dtype), episode.support_y.to(device),
                   episode.query_x.to(device, dtype), episode.query_y.to(device))


def meta_gradients(method: FewShotMethod, model: nn.Module, episodes: Episode, tasks: list[BitwidthTask],
                   inner: InnerLoop | None, batched: bool, counter: PassCounter, clamp: float | None,
                   kinds: Mapping[str, str]) -> dict[str, float]:
    """One step's aggregated, clamped gradients written into ``p.grad`` (and, for PN with running
    statistics, the updated statistics into the model's buffers). ``episodes``: a stacked meta-batch
    (MAML) or one episode (PN)."""
    params, buffers = model_state(model)
    if method.ALGORITHM == "maml":
        run = fomaml_batched if batched else fomaml_sequential
        result = run(model, params, buffers, episodes, tasks, inner)
        passes = len(tasks) * (inner.steps + 1)
        loss, accuracy = result.query_loss, result.query_accuracy
    else:
        use_batched = batched and not method.RUNNING_STATS and len(tasks) > 1
        result = (pn_batched if use_batched else pn_sequential)(model, params, buffers, episodes, tasks)
        if method.RUNNING_STATS:
            with torch.no_grad():
                for name, value in result.buffers.items():
                    model.get_buffer(name).copy_(value)
        passes = len(tasks)
        loss, accuracy = result.loss, result.accuracy
    counter.forward(passes)
    counter.backward(passes)
    usage = task_usage(model, tasks) if method.DIVISOR == "steps_by_usage" else None
    grads = aggregate_meta_gradients(result.grads, kinds, usage, divisor=method.DIVISOR, clamp=clamp)
    for name, param in model.named_parameters():
        param.grad = grads[name].to(param.dtype)
    return {"loss": float(loss.mean()), "accuracy": float(accuracy.mean())}


def paired_accuracies(method: FewShotMethod, model: nn.Module, episodes: Episode, tasks: list[BitwidthTask],
                      inner: InnerLoop | None, batched: bool, chunk: int) -> torch.Tensor:
    """Accuracy of episode i at tasks[i] (validation: one task per episode)."""
    params, buffers = model_state(model)
    ways = episodes.support_y.max().item() + 1

    def one(episode: Episode, task: Any) -> torch.Tensor:
        if method.ALGORITHM == "maml":
            return maml_episode_accuracy(model, params, buffers, episode, task, inner)
        return pn_episode_accuracy(model, params, buffers, episode, task, ways)

    with module_mode(model, method.ALGORITHM == "maml"):
        if not batched:
            return torch.stack([one(Episode(*(f[i] for f in episodes)), t) for i, t in enumerate(tasks)])
        codes = task_tensor(tasks, device=episodes.support_x.device)
        return vmap(one, chunk_size=chunk)(episodes, codes)


# ---------------------------------------------------------------- training


def _optimizer_parameters(method: FewShotMethod, model: nn.Module) -> list[nn.Parameter]:
    """Every parameter, except LSQ activation steps under the official quirk that never learns them."""
    kinds = parameter_kinds(model)
    frozen = method.switches.get("frozen_activation_steps", False)
    return [p for name, p in model.named_parameters() if not (frozen and kinds[name] == "activation_step")]


def build_model(method: FewShotMethod, config: Mapping[str, Any], train_split, device: torch.device) -> nn.Module:
    """The base network, seeded, with its activation steps calibrated once at the base task on one
    training support set (the authors' "temp" forward; PN: support + query), if that task quantizes them."""
    seed_everything(config["job"]["seed"])
    model = method.build_model().to(device)
    base = method.base_task()
    if base.a is not None:
        episode = _train_sampler(config, train_split, derived_seed(config["job"]["seed"], 3)).sample()
        x = episode.support_x if method.ALGORITHM == "maml" else torch.cat([episode.support_x, episode.query_x])
        with module_mode(model, True):
            calibrate_activation_steps(model, x.to(device, next(model.parameters()).dtype), base)
    return model


def train(config: Mapping[str, Any], out: str | Path, device: str | None = None,
          replace_stale: bool = False) -> RunDir:
    run = RunDir(out)
    run.prepare(config, replace_stale)
    log = job_logger(run)
    dev = select_device(device)
    job, data, train_cfg = config["job"], config["data"], config["train"]
    seed = job["seed"]
    method: FewShotMethod = get_method(job["method"]).cls(config)
    train_split = _split(config, "train")
    val_tasks = _fixed_tasks(config, "val", data["val_tasks"])
    info = train_split.info
    model = build_model(method, config, train_split, dev)
    dtype = next(model.parameters()).dtype
    sampler = _train_sampler(config, train_split, seed)
    optimizer = build_optimizer(_optimizer_parameters(method, model), train_cfg["optimizer"])
    scheduler = build_scheduler(optimizer, train_cfg["schedule"])
    counter = PassCounter()
    progress = TrainingProgress(run, config, {"model": model, "optimizer": optimizer, "scheduler": scheduler,
                                              "method": method, "sampler": sampler, "counter": counter})
    if progress.resume():
        log.info(f"resuming {run.root} after epoch {progress.epoch}")
    else:
        log.info(f"{job['setup']} / {job['method']} {job['train_task'] or ''} ({job['scale']}, {job['fidelity']}, "
                 f"seed {seed}) on {info.title}, {dev}; config {config_hash(config)}")

    kinds = parameter_kinds(model)
    batched = train_cfg["engine"] == "batched"
    inner = InnerLoop(train_cfg["inner_lr"], train_cfg["inner_steps"], adapt_set(model, inner_adapt_kinds(method))) \
        if method.ALGORITHM == "maml" else None
    val_inner = InnerLoop(config["evaluate"]["finetune_lr"], config["evaluate"]["finetune_steps"], inner.adapt) \
        if inner is not None else None
    per_step = train_cfg["meta_batch"] if method.ALGORITHM == "maml" else method.options.get("tasks_per_step", 1)
    epochs, steps, log_every = train_cfg["epochs"], train_cfg["steps_per_epoch"], train_cfg["log_every"]
    val_episodes = _device_episode(val_tasks.batch(range(len(val_tasks))), dev, dtype)
    for epoch in range(progress.epoch + 1, epochs + 1):
        began = time.perf_counter()
        losses = []
        for step in range(1, steps + 1):
            optimizer.zero_grad(set_to_none=True)
            if method.ALGORITHM == "maml":
                episodes = _device_episode(sampler.sample_batch(train_cfg["meta_batch"]), dev, dtype)
            else:
                episodes = _device_episode(sampler.sample(), dev, dtype)
            tasks = method.step_tasks(per_step)
            with module_mode(model, True):
                stats = meta_gradients(method, model, episodes, tasks, inner, batched, counter,
                                       train_cfg["grad_clamp"], kinds)
            losses.append(apply_update(stats, optimizer, counter, epoch, step))
            if step % log_every == 0 or step == steps:
                log.info(f"epoch {epoch}/{epochs} step {step}/{steps} query loss {stats['loss']:.4f} "
                         f"accuracy {100 * stats['accuracy']:.1f}%")
        scheduler.step()
        tasks = method.validation_tasks(len(val_tasks), epoch)
        accuracies = paired_accuracies(method, model, val_episodes, tasks, val_inner, batched,
                                       config["evaluate"]["episode_chunk"])
        score, _ = mean_ci95(accuracies)
        train_loss = sum(losses) / len(losses)
        improved = progress.end_epoch(epoch, time.perf_counter() - began, train_loss, score, "val",
                                      optimizer.param_groups[0]["lr"])
        log.info(f"epoch {epoch}/{epochs}: query loss {train_loss:.4f}, validation accuracy {score:.2f}%"
                 f"{' (best)' if improved else ''}, {time.perf_counter() - began:.1f}s")

    progress.write_summary(epochs, counter, method.trained_tasks(), "val")
    log.info(f"training done: {counter.updates} updates, {progress.elapsed:.1f}s")
    return run


# ---------------------------------------------------------------- meta-test


def _untrained_steps_prepare(method: FewShotMethod, model: nn.Module, params: dict[str, torch.Tensor], seed: int):
    """Per-(episode, bitwidth) steps for the quantizers a model never trained (official §5.2–§5.3): an
    FP-trained baseline has neither weight nor activation steps, a QAT model trained with FP activations
    has no activation steps. Its test network boots activation steps from the run's first batch, and
    weight steps from a random init (official) or from the trained weights (corrected). None if the
    model trained every step it uses."""
    trained = method.trained_tasks()
    boot_activations = all(t.a is None for t in trained)
    boot_weights = all(t.w is None for t in trained)
    if not (boot_activations or boot_weights):
        return None
    references = weight_step_references(model, method.switches["fp_baseline_random_steps"], seed) \
        if boot_weights else None
    if boot_activations:  # placeholders, so the state checks pass: every run boots its own before use
        for name, kind in parameter_kinds(model).items():
            if kind == "activation_step":
                params[name] = torch.ones_like(params[name])
    buffers = dict(model.named_buffers())
    first_batch_is_support = method.ALGORITHM == "maml"

    def prepare(p: dict[str, torch.Tensor], episode: Episode, task: Any) -> dict[str, torch.Tensor]:
        booted = boot_weight_steps(model, p, references, task) if boot_weights else {}
        if boot_activations:
            x = episode.support_x if first_batch_is_support else torch.cat([episode.support_x, episode.query_x])
            booted.update(boot_activation_steps(model, {**p, **booted}, buffers, x, task))
        return booted

    return prepare


def meta_test(method: FewShotMethod, model: nn.Module, tasks: list[BitwidthTask], episodes: FixedTaskSet,
              config: Mapping[str, Any], device: torch.device, batched: bool) -> torch.Tensor:
    """[len(tasks), len(episodes)] accuracies on the fixed test tasks."""
    dtype = next(model.parameters()).dtype
    params, buffers = model_state(model)
    prepare = _untrained_steps_prepare(method, model, params, config["job"]["seed"])
    chunk = config["evaluate"]["episode_chunk"]
    batches = [_device_episode(episodes.batch(range(start, min(start + chunk, len(episodes)))), device, dtype)
               for start in range(0, len(episodes), chunk)]
    if method.ALGORITHM == "maml":
        kinds = inner_adapt_kinds(method)
        if method.is_fp_baseline and method.switches["frozen_steps_in_inner_loops"]:
            kinds = kinds | {"weight_step"}  # the fresh test net's s_w is in its fine-tuning optimizer (§5.2)
        inner = InnerLoop(config["evaluate"]["finetune_lr"], config["evaluate"]["finetune_steps"],
                          adapt_set(model, kinds))
        with module_mode(model, True):
            if batched:
                return maml_metatest_batched(model, params, buffers, batches, tasks, inner, episode_chunk=chunk,
                                             prepare=prepare)
            return maml_metatest_sequential(model, params, buffers, batches, tasks, inner, prepare=prepare)
    if batched:
        return pn_metatest_batched(model, params, buffers, batches, tasks, episode_chunk=chunk, prepare=prepare)
    return pn_metatest_sequential(model, params, buffers, batches, tasks, prepare=prepare)


def evaluate(out: str | Path, tasks: list[str] | None = None, checkpoint: str | None = None,
             device: str | None = None) -> dict[str, Any]:
    """Meta-test a trained run on the fixed test tasks at every tested bitwidth; write metrics.json and
    episode_accuracies.npz."""
    run, config, summary = finished_run(out)
    log = job_logger(run)
    dev = select_device(device)
    job, data = config["job"], config["data"]
    entry = get_method(job["method"])
    method: FewShotMethod = entry.cls(config)
    which = checkpoint or config["evaluate"]["checkpoint"]
    path = run.checkpoint(which)
    state = run.load_checkpoint(path, config)
    model = method.build_model().to(dev)
    model.load_state_dict(state["model"])
    chosen = evaluation_tasks(config, tasks)
    episodes = _fixed_tasks(config, "test", data["test_tasks"])
    began = time.perf_counter()
    log.info(f"meta-test: {len(episodes)} tasks × {len(chosen)} bitwidths ({episodes.fingerprint[:12]})")
    accuracies = meta_test(method, model, chosen, episodes, config, dev, config["train"]["engine"] == "batched")
    eval_time = time.perf_counter() - began
    results = []
    for task, row in zip(chosen, accuracies):
        mean, ci = mean_ci95(row)
        results.append(result_row(task, mean, ci, int(row.numel())))
        log.info(f"{task}: {mean:.2f}% ± {ci:.2f} ({row.numel()} tasks)")
    atomic_write(run.root / "episode_accuracies.npz", lambda f: np.savez(
        f, accuracies=accuracies.cpu().numpy(), bits=np.array([str(t) for t in chosen]),
        fingerprint=np.array(episodes.fingerprint)))
    metrics = metrics_record(
        config, summary, title=entry.title, info=episodes.split.info, results=results, not_evaluated=[],
        checkpoint=which, state=state, checkpoint_path=path, eval_time=eval_time, device=dev,
        accuracy_definition="mean over test tasks of the query accuracy; ci95 = 1.96·sd/√tasks",
        identity_extra={"ways": data["ways"], "shots": data["shots"]},
        extra={"test_tasks": {"count": len(episodes), "fingerprint": episodes.fingerprint,
                              "queries": data["queries"], "per_episode_file": "episode_accuracies.npz"}})
    write_json(run.metrics, metrics)
    log.info(f"wrote {run.metrics} ({len(results)} bitwidths)")
    return metrics


__all__ = ["DivergenceError", "evaluate", "format_results", "meta_test", "train"]
