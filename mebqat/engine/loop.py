"""The one resumable training-and-evaluation loop, for every method of every table.

``train(config, out)`` leaves ``config.yaml``, ``train.log``, ``history.jsonl``, ``checkpoints/{last,best}.pt``
and ``train_summary.json`` in ``out``; ``evaluate(out)`` writes ``metrics.json`` and the per-item outcomes that
paired comparisons use (``image_correct.npz`` for Table 2, ``episode_accuracies.npz`` for Tables 4/5); every
file is described in docs/methods-and-engines.md, "What a job writes". A job restarted on the same directory
continues from the last epoch checkpoint (model, optimizer, scheduler, RNG states, the method's and the data's
state, pass counts) and ends with the same metrics as an uninterrupted run, because every random stream
derives from (seed, purpose, epoch).

What differs between methods is behind :class:`mebqat.methods.base.Method`; what differs between problems
(batches of images, episodes) is behind :mod:`mebqat.engine.data`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..core.accuracy import PER_BATCH, PER_EPISODE, PER_IMAGE
from ..core.config import ConfigError, dataset_identity, dataset_title, evaluation_tasks
from ..core.counters import PassCounter
from ..core.data_fingerprint import DataFiles, DataFingerprint, describe_changes, write_fingerprint
from ..core.files import InputError
from ..core.hashing import config_hash
from ..core.rundir_layout import EPISODE_OUTCOMES, IMAGE_OUTCOMES, METRICS, for_subset
from ..core.tasks import BitwidthTask
from ..methods import Method, create_method
from ..methods.base import DivergenceError
from ..models.memory_format import resolve_memory_format, use_memory_format
from . import rehearsal, timing
from .data import FewShotData, ProblemData, data_files, open_data
from .metrics import architecture_counts, bits_value, finished_run, metrics_record, result_row
from .optim import build_optimizer, build_scheduler
from .progress import TrainingProgress
from .rehearsal import held_bytes
from .rundir import RunDir, holding_run_dir, job_logger, write_json
from .runtime import seed_everything, select_device

EpochCallback = Callable[[dict[str, Any]], None]
"""Called with each epoch's history record once the epoch is durable (its checkpoint written)."""


def build_model(
    config: Mapping[str, Any], method: Method, data: ProblemData, device: torch.device
) -> tuple[torch.nn.Module, str]:
    """The method's network on ``device`` in the layout ``train.memory_format`` resolves to, and that layout."""
    memory_format = resolve_memory_format(config["train"].get("memory_format", "auto"), device, method.engine)
    return use_memory_format(method.build_model(data).to(device), memory_format), memory_format


def _finite(value: torch.Tensor | float, what: str, epoch: int, step: int) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise DivergenceError(
            f"{what} became {number} at epoch {epoch}, step {step}; stopping (no metrics are written)"
        )
    return number


@holding_run_dir("train")
def train(
    config: Mapping[str, Any],
    out: str | Path,
    device: str | None = None,
    replace_stale: bool = False,
    on_epoch: EpochCallback | None = None,
    on_start: Callable[[RunDir], None] | None = None,
) -> RunDir:
    """Train (or resume) the job into ``out``. The device and the data are checked before anything is
    written; ``on_start(run)`` is called once the run directory is ready (the live MLflow run opens there)."""
    run = RunDir(out)
    run.check_writable()
    dev = select_device(device)
    method = create_method(config, dev)  # train.engine (auto: the method's default for this device), fixed here
    with timing.wall("data_open"):
        data = open_data(config, method.problem, dev, "train")
        files = data_files(config, data)  # hashed now (cached): a change since the run's record is refused
    timing.note("data_bytes", held_bytes(data))
    replaced = run.prepare(config, replace_stale, files)
    log = job_logger(run)
    if replaced is not None:
        log.info(f"replaced the previous run (--replace-stale): {replaced}")
    try:
        if on_start is not None:
            on_start(run)
        return _train(run, log, config, dev, method, data, on_epoch)
    except BaseException as err:
        log.error(f"stopped: {_why(err)}")
        raise


def _why(err: BaseException) -> str:
    """What stopped training, in train.log's words: a signal by its name (``killed by SIGTERM``, not the exit
    status ``Stopped: 143`` of mebqat.engine.job's signal exception), else the error."""
    name = getattr(err, "signal", None)
    if isinstance(err, SystemExit) and isinstance(name, str):
        return f"killed by {name}"
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def _train(
    run: RunDir,
    log: Any,
    config: Mapping[str, Any],
    dev: torch.device,
    method: Method,
    data: ProblemData,
    on_epoch: EpochCallback | None,
) -> RunDir:
    job, train_cfg = config["job"], config["train"]
    seed_everything(job["seed"])
    model, memory_format = build_model(config, method, data, dev)
    method.initialise(model, data, dev)
    optimizer = build_optimizer(method.trainable_parameters(model), train_cfg["optimizer"])
    scheduler = build_scheduler(optimizer, train_cfg["schedule"])
    counter = PassCounter()
    progress = TrainingProgress(
        run,
        config,
        {
            "model": model,
            "optimizer": optimizer,
            "scheduler": scheduler,
            "method": method,
            "data": data,
            "counter": counter,
        },
    )
    if progress.resume():
        log.info(f"resuming {run.root} after epoch {progress.epoch}")
        rehearsal.after_resume(progress.components)
    else:
        log.info(
            f"{job['setup']} / {job['method']} {job['train_task'] or ''} ({job['scale']}, {job['fidelity']}, "
            f"seed {job['seed']}) on {dataset_title(dataset_identity(config))}, {dev}, {method.engine} engine, "
            f"{memory_format}; config {config_hash(config)}"
        )
        log.info(f"schedule: {scheduler.describe(train_cfg['epochs'])}")

    epochs, log_every = train_cfg["epochs"], train_cfg["log_every"]
    steps = data.steps()
    unset = _non_finite(model)  # e.g. LSQ activation steps an FP-trained network never calibrates
    for epoch in range(progress.epoch + 1, epochs + 1):
        began = time.perf_counter()
        model.train()
        losses: list[torch.Tensor] = []
        for step, batch in enumerate(timing.timed(data.training_batches(epoch), "batch_wait"), start=1):
            timing.mark("first_step")
            with timing.wall("update"):
                with timing.phase("steps"):
                    optimizer.zero_grad(set_to_none=True)
                    stats = method.update(model, batch, counter)
                losses.append(
                    stats["loss"].detach() if isinstance(stats["loss"], torch.Tensor) else torch.tensor(stats["loss"])
                )
                if step % log_every == 0 or step == steps:
                    # the one read-back of a step, and only every log_every steps: a NaN loss stops the job here
                    loss = _finite(stats["loss"], "the training loss", epoch, step)
                    extra = f" accuracy {float(stats['accuracy']):.4f}" if "accuracy" in stats else ""
                    log.info(
                        f"epoch {epoch}/{epochs} step {step}/{steps} loss {loss:.4f}{extra} "
                        f"lr {optimizer.param_groups[0]['lr']:.3g}"
                    )
                with timing.phase("steps"):
                    optimizer.step()
                counter.update()
        train_loss = _finite(torch.stack(losses).mean(), "the training loss", epoch, steps)
        diverged = _non_finite(model) - unset
        if diverged:
            raise DivergenceError(
                f"parameter {sorted(diverged)[0]} became non-finite by epoch {epoch}, step {steps}; "
                f"stopping (no metrics are written)"
            )
        scheduler.step()
        with timing.phase("validation"), timing.wall("validation"):
            score = _finite(method.validate(model, data, epoch), "the validation accuracy", epoch, steps)
        improved = progress.end_epoch(
            epoch,
            time.perf_counter() - began,
            train_loss,
            score,
            getattr(data, "select_split", "val"),
            optimizer.param_groups[0]["lr"],
        )
        log.info(
            f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}, selection accuracy {score:.2f}%"
            f"{' (best)' if improved else ''}, {time.perf_counter() - began:.1f}s"
        )
        if on_epoch is not None:
            assert progress.last_record is not None  # end_epoch has just recorded this epoch
            on_epoch(progress.last_record)
        rehearsal.after_epoch(epoch, progress.components)

    progress.write_summary(
        epochs, counter, method.trained_tasks(), getattr(data, "select_split", "val"), method.engine, memory_format
    )
    log.info(f"training done: {counter.updates} updates, {progress.elapsed:.1f}s")
    return run


def _non_finite(model: torch.nn.Module) -> set[str]:
    """Parameters holding NaN/inf: a divergence in the last steps of an epoch leaves them behind a finite
    logged loss."""
    flags = torch.stack([torch.isfinite(p).all() for p in model.parameters()]).tolist()  # one read-back
    return {name for (name, _), finite in zip(model.named_parameters(), flags, strict=True) if not finite}


@holding_run_dir("evaluate", create=False)
def evaluate(
    out: str | Path, tasks: list[str] | None = None, checkpoint: str | None = None, device: str | None = None
) -> dict[str, Any]:
    """Evaluate a trained run at every tested bitwidth; write its metrics.json and per-item outcomes. With
    ``tasks`` (a subset), the results go to ``metrics-<tasks>.json`` beside it, never over the full one."""
    run, config, summary = finished_run(out)
    run.remove_leftovers()  # a killed evaluation's temporary files, as a training's prepare() removes its own
    dev = select_device(device)
    method = create_method(config, dev)
    requested = evaluation_tasks(config, tasks)
    chosen = method.evaluation_tasks(requested, strict=tasks is not None)
    which = checkpoint or config["evaluate"]["checkpoint"]
    path = run.checkpoint(which)
    state = run.load_checkpoint(path, config)
    with timing.wall("test_data_open"):
        data = open_data(config, method.problem, dev, "test")
        fingerprint = _checked_fingerprint(run, data_files(config, data))
    timing.note("test_data_bytes", held_bytes(data))
    log = job_logger(run)
    try:
        return _evaluate(
            run,
            log,
            config,
            summary,
            dev,
            method,
            data,
            state,
            which,
            path,
            requested,
            chosen,
            fingerprint,
            subset=tasks is not None,
        )
    except BaseException as err:
        log.error(f"evaluation stopped: {type(err).__name__}: {' '.join(str(err).split())}")
        raise


def _checked_fingerprint(run: RunDir, files: DataFiles) -> DataFingerprint:
    """What the run read, evaluation included; refused when a file it recorded changed since."""
    fix = (
        "restore the data, or retrain on the data as they are now (`mebqat run` or `mebqat train` with --replace-stale)"
    )
    try:
        recorded = run.read_data_fingerprint()
    except InputError as err:
        raise ConfigError(f"{err}; {fix}") from None
    changes = files.changes_since(recorded)
    if changes:
        raise ConfigError(f"{describe_changes(run.root, changes)}; {fix}")
    return files.record(recorded, recorded.note if recorded is not None else "")


def subset_label(tasks: list[BitwidthTask]) -> str:
    return "_".join(t.label() for t in tasks)


def _evaluate(
    run: RunDir,
    log: Any,
    config: Mapping[str, Any],
    summary: Mapping[str, Any],
    dev: torch.device,
    method: Method,
    data: ProblemData,
    state: Mapping[str, Any],
    which: str,
    path: Path,
    requested: list[BitwidthTask],
    chosen: list[BitwidthTask],
    fingerprint: DataFingerprint,
    subset: bool,
) -> dict[str, Any]:
    model, _ = build_model(config, method, data, dev)
    model.load_state_dict(state["model"])
    began = time.perf_counter()
    log.info(f"evaluating at {len(chosen)} bitwidths ({which} checkpoint, epoch {state['epoch']})")
    with timing.phase("evaluation"), timing.wall("evaluation"):
        result = method.evaluate(model, data, chosen)
    eval_time = time.perf_counter() - began
    rows = []
    for task, accuracy, ci, n in zip(result.tasks, result.accuracy, result.ci95, result.n, strict=True):
        if not math.isfinite(accuracy):
            raise DivergenceError(
                f"the accuracy at {task} is {accuracy}: the model's outputs are not finite; no metrics are written"
            )
        rows.append(result_row(task, accuracy, ci, n))
        log.info(f"{task}: {accuracy:.2f}% ± {ci:.2f} ({n} {result.item_kind})")
    label = subset_label(chosen) if subset else ""
    items_file = _write_items(run, result, label)
    not_evaluated = [
        {
            "bits_w": bits_value(t.w),
            "bits_a": bits_value(t.a),
            "reason": f"{method.info.title} has no parameters for this bitwidth",
        }
        for t in requested
        if t not in chosen
    ]
    per_batch = method.fidelity.per_batch_accuracy and result.item_kind == "images"
    definition = PER_EPISODE if result.item_kind == "episodes" else PER_BATCH if per_batch else PER_IMAGE
    identity = {"ways": data.ways, "shots": data.shots} if isinstance(data, FewShotData) else {}
    metrics = metrics_record(
        config,
        summary,
        title=method.info.title,
        results=rows,
        not_evaluated=not_evaluated,
        checkpoint=which,
        state=state,
        checkpoint_path=path,
        eval_time=eval_time,
        device=dev,
        accuracy_definition=definition,
        eval_engine=method.engine,
        identity_extra=identity,
        data_fingerprint=fingerprint.provenance(),
        extra={
            **result.extra,
            "per_item": {"file": items_file, "kind": result.item_kind},
            "architecture": architecture_counts(config, model),
        },
    )
    target = run.root / for_subset(METRICS, label)
    write_fingerprint(run.data_fingerprint, fingerprint)  # first: metrics.json names its digest
    write_json(target, metrics)
    log.info(f"wrote {target} ({len(rows)} bitwidths)")
    return metrics


def _write_items(run: RunDir, result, label: str = "") -> str:
    bits = np.array([str(t) for t in result.tasks])
    if result.item_kind == "episodes":
        name = for_subset(EPISODE_OUTCOMES, label)
        arrays = {
            "accuracies": result.per_item,
            "bits": bits,
            "fingerprint": np.array(result.extra["test_tasks"]["fingerprint"]),
        }
    else:
        name = for_subset(IMAGE_OUTCOMES, label)
        arrays = {
            "correct": result.per_item,
            "bits": bits,
            "image_ids": result.item_ids,
            "batch_sizes": np.array(result.batch_sizes),
        }
    atomic_write(run.root / name, lambda f: np.savez(f, **arrays))
    return name


__all__ = ["DivergenceError", "evaluate", "train"]
