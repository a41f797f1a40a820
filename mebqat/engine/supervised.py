"""The engine of the Table 2 methods: epochs of steps, per-epoch validation and checkpoint selection,
checkpoints every epoch with exact resume, and the final evaluation at every tested bitwidth.

``train(config, out)`` leaves ``config.yaml``, ``train.log``, ``history.jsonl``, ``checkpoints/{last,best}.pt``
and ``train_summary.json`` in ``out``; ``evaluate(out)`` writes ``metrics.json`` (SPEC §6).
Resuming: a job restarted on the same directory continues from the last epoch checkpoint (model,
optimizer, scheduler, RNG states, the method's task sampler, pass counts) and ends with the same metrics
as an uninterrupted run, because each epoch's data order depends only on (seed, epoch).
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch.utils.data import DataLoader, Dataset

from ..methods import get_method
from ..methods.base import SupervisedMethod
from ..quant import BitwidthTask
from .config import evaluation_tasks
from .counters import PassCounter
from .optim import build_optimizer, build_scheduler
from .metrics import bits_value, finished_run, format_results, metrics_record, result_row
from .provenance import config_hash
from .progress import TrainingProgress, apply_update
from .rundir import RunDir, job_logger, write_json
from .runtime import DivergenceError, derived_seed, seed_everything, select_device

# ---------------------------------------------------------------- data


def _splits(config: Mapping[str, Any]) -> tuple[str, str]:
    """(training split, selection split): the authors trained on all training data and selected on the
    test split; the corrected fidelity holds out a validation split."""
    return ("trainval", "test") if config["fidelity_switches"]["select_on_test_split"] else ("train", "val")


def load_split(config: Mapping[str, Any], split: str) -> Dataset:
    from ..data import load_supervised

    data = config["data"]
    return load_supervised(data["name"], split, data["root"], normalization=data["normalization"],
                           input_shape=tuple(data["input_shape"]) if data["input_shape"] else None,
                           download=data["download"])


def _loader(dataset: Dataset, batch_size: int, seed: int, workers: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator, num_workers=workers,
                      drop_last=False)


def _batches(loader: DataLoader, steps: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over the loader, or exactly ``steps`` batches (cycling if the split is shorter)."""
    if steps is None:
        yield from loader
    else:
        yield from itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), steps)


# ---------------------------------------------------------------- accuracy


@torch.no_grad()
def batch_accuracies(model: torch.nn.Module, loader: DataLoader, tasks: list[BitwidthTask] | BitwidthTask,
                     device: torch.device, limit: int | None = None) -> list[tuple[int, int]]:
    """(correct, count) per batch; ``tasks`` is one task, or one task per batch."""
    model.eval()
    results = []
    for index, (x, y) in enumerate(loader):
        if limit is not None and index >= limit:
            break
        task = tasks if isinstance(tasks, BitwidthTask) else tasks[index]
        logits = model(x.to(device), task)
        results.append((int((logits.argmax(-1) == y.to(device)).sum()), int(y.numel())))
    return results


def summarise_accuracy(batches: list[tuple[int, int]], per_batch: bool) -> tuple[float, float, int]:
    """(accuracy %, 95% CI half-width %, images). Per-batch (official): the unweighted mean of batch
    accuracies, CI from their spread; per-image: the fraction correct, binomial (normal) CI."""
    images = sum(n for _, n in batches)
    if per_batch:
        accs = torch.tensor([c / n for c, n in batches], dtype=torch.float64)
        mean = float(accs.mean())
        ci = 1.96 * float(accs.std(unbiased=True)) / math.sqrt(len(accs)) if len(accs) > 1 else float("nan")
    else:
        mean = sum(c for c, _ in batches) / images
        ci = 1.96 * math.sqrt(mean * (1 - mean) / images)
    return 100 * mean, 100 * ci, images


# ---------------------------------------------------------------- training


def _validate(method: SupervisedMethod, model: torch.nn.Module, loader: DataLoader, epoch: int,
              device: torch.device, config: Mapping[str, Any]) -> float:
    limit = config["data"]["limit_eval_batches"]
    batches = min(len(loader), limit) if limit else len(loader)
    tasks = method.validation_tasks(batches, epoch)
    accuracy, _, _ = summarise_accuracy(batch_accuracies(model, loader, tasks, device, limit),
                                        config["fidelity_switches"]["per_batch_accuracy"])
    return accuracy


def train(config: Mapping[str, Any], out: str | Path, device: str | None = None,
          replace_stale: bool = False) -> RunDir:
    run = RunDir(out)
    run.prepare(config, replace_stale)
    log = job_logger(run)
    dev = select_device(device)
    job = config["job"]
    seed = job["seed"]
    method: SupervisedMethod = get_method(job["method"]).cls(config)
    train_split, select_split = _splits(config)
    train_set, select_set = load_split(config, train_split), load_split(config, select_split)
    info = train_set.info
    seed_everything(seed)
    model = method.build_model(info.num_classes).to(dev)
    optimizer = build_optimizer(model.parameters(), config["train"]["optimizer"])
    scheduler = build_scheduler(optimizer, config["train"]["schedule"])
    counter = PassCounter()
    progress = TrainingProgress(run, config, {"model": model, "optimizer": optimizer, "scheduler": scheduler,
                                              "method": method, "counter": counter})
    if progress.resume():
        log.info(f"resuming {run.root} after epoch {progress.epoch}")
    else:
        log.info(f"{job['setup']} / {job['method']} {job['train_task'] or ''} ({job['scale']}, {job['fidelity']}, "
                 f"seed {seed}) on {info.name}{' (stand-in for ' + info.stands_for + ')' if info.is_standin else ''}, "
                 f"{dev}; config {config_hash(config)}")

    epochs, steps = config["train"]["epochs"], config["train"]["steps_per_epoch"]
    batch_size, workers = config["data"]["batch_size"], config["data"]["workers"]
    log_every = config["train"]["log_every"]
    for epoch in range(progress.epoch + 1, epochs + 1):
        began = time.perf_counter()
        model.train()
        loader = _loader(train_set, batch_size, derived_seed(seed, 0, epoch), workers)
        total = steps or len(loader)
        losses = []
        for step, (x, y) in enumerate(_batches(loader, steps), start=1):
            optimizer.zero_grad(set_to_none=True)
            stats = method.step(model, x.to(dev), y.to(dev), counter)
            losses.append(apply_update(stats, optimizer, counter, epoch, step))
            if step % log_every == 0 or step == total:
                log.info(f"epoch {epoch}/{epochs} step {step}/{total} loss {stats['loss']:.4f} "
                         f"lr {optimizer.param_groups[0]['lr']:.3g}")
        scheduler.step()
        # every shuffle derives from (seed, purpose, epoch), never from a generator carried across epochs,
        # so a resumed run sees the same batches (which matters with transductive BatchNorm)
        select_loader = _loader(select_set, config["data"]["eval_batch_size"], derived_seed(seed, 1, epoch), workers)
        score = _validate(method, model, select_loader, epoch, dev, config)
        train_loss = sum(losses) / len(losses)
        improved = progress.end_epoch(epoch, time.perf_counter() - began, train_loss, score, select_split,
                                      optimizer.param_groups[0]["lr"])
        log.info(f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}, {select_split} accuracy "
                 f"{score:.2f}%{' (best)' if improved else ''}, {time.perf_counter() - began:.1f}s")

    progress.write_summary(epochs, counter, method.trained_tasks(), select_split)
    log.info(f"training done: {counter.updates} updates, {progress.elapsed:.1f}s")
    return run


# ---------------------------------------------------------------- evaluation


def evaluate(out: str | Path, tasks: list[str] | None = None, checkpoint: str | None = None,
             device: str | None = None) -> dict[str, Any]:
    """Evaluate a trained run at every tested bitwidth and write its metrics.json."""
    run, config, summary = finished_run(out)
    log = job_logger(run)
    dev = select_device(device)
    job = config["job"]
    entry = get_method(job["method"])
    method: SupervisedMethod = entry.cls(config)
    which = checkpoint or config["evaluate"]["checkpoint"]
    path = run.checkpoint(which)
    state = run.load_checkpoint(path, config)
    test_set = load_split(config, "test")
    model = method.build_model(test_set.info.num_classes).to(dev)
    model.load_state_dict(state["model"])
    requested = evaluation_tasks(config, tasks)
    chosen = method.evaluation_tasks(requested, strict=tasks is not None)
    per_batch = config["fidelity_switches"]["per_batch_accuracy"]
    began = time.perf_counter()
    results = []
    for task in chosen:  # the same shuffled batches for every bitwidth (paired; transductive BN sees equal batches)
        loader = _loader(test_set, config["data"]["eval_batch_size"], derived_seed(job["seed"], 2),
                         config["data"]["workers"])
        batches = batch_accuracies(model, loader, task, dev, config["data"]["limit_eval_batches"])
        accuracy, ci, images = summarise_accuracy(batches, per_batch)
        results.append(result_row(task, accuracy, ci, images, batches=len(batches)))
        log.info(f"{task}: {accuracy:.2f}% ± {ci:.2f} ({images} images)")
    eval_time = time.perf_counter() - began
    not_evaluated = [{"bits_w": bits_value(t.w), "bits_a": bits_value(t.a),
                      "reason": f"{entry.title} has no parameters for this bitwidth"}
                     for t in requested if t not in chosen]
    metrics = metrics_record(
        config, summary, title=entry.title, info=test_set.info, results=results, not_evaluated=not_evaluated,
        checkpoint=which, state=state, checkpoint_path=path, eval_time=eval_time, device=dev,
        accuracy_definition="mean of per-batch accuracies" if per_batch else "fraction of correct images")
    write_json(run.metrics, metrics)
    log.info(f"wrote {run.metrics} ({len(results)} bitwidths)")
    return metrics


__all__ = ["DivergenceError", "evaluate", "format_results", "train"]
