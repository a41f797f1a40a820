"""Paper scale on one accelerator, measured in one run: is batching worth it, and how long do the tables take?

    benchmarks/gpu_check.sh                          # on a GPU: everything, within 8 minutes on one H100/H200
    benchmarks/gpu_check.sh --device cpu --small     # the same script at toy sizes on a CPU (the test suite runs it)

Prints, as Markdown tables:

1. **Engines.** Sequential ÷ batched, and the per-task reference loop (``reference_loops.py``: a fresh network
   copy per task, as the authors' release) ÷ each of ours, for the Table 2 MEBQAT step of each network, the
   MEBQAT-MAML meta-update and the MEBQAT-PN update of each few-shot setup, and the 600 × 9 meta-test of one
   setup per family; peak device memory of each.
2. **Rates at paper scale with the data path.** Images per second of a Table 2 epoch slice (uint8 images of
   the real dataset's size on the device, shuffled, augmented on the device, the method's update and the
   optimizer step) for every method of every setup, test images per second; meta-updates per second of
   every few-shot method, meta-test (episode, bitwidth) pairs per second.
3. **torch.compile** (on by default on a GPU): the compiled network ÷ eager for the Table 2 step.
4. **Projected GPU-hours per table**: every job of ``config/paper.yaml`` (the paper's epochs and updates) ×
   the measured rates of its method and engine, training, per-epoch validation and the final evaluation.

Each engine runs with ``train.engine: auto`` resolved for the device, as the workflow does.
"""

from __future__ import annotations

import argparse
import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fewshot_engines
import numpy as np
import table2_engines
import torch
import yaml
from common import (
    Classes,
    add_device_arguments,
    dataset_info,
    describe_device,
    engine_table,
    job_config,
    median,
    peak_memory,
    print_table,
    random_batch,
    random_images,
    ratio,
    seconds,
    setup_device,
    synchronize,
    take_turns,
)

from mebqat.core.config import evaluation_tasks, load_table_setups, resolve_job
from mebqat.core.counters import PassCounter
from mebqat.core.registry import METHODS
from mebqat.data.supervised import SupervisedDataset
from mebqat.engine.data import SupervisedData
from mebqat.engine.optim import build_optimizer
from mebqat.methods import create_method
from mebqat.workflow.matrix import expand_jobs, load_matrix

ROOT = Path(__file__).resolve().parents[1]
DEDICATED_TASK = "(4,4)"  # the bitwidth a dedicated method's rate is measured at


@dataclass(frozen=True)
class Sizes:
    scale: str
    table2_batch: int | None  # None: the setup's own (256 at paper scale)
    repeats: int
    slice_steps: int
    metatest_episodes: int
    reference_episodes: int
    projection_episodes: int
    train_images: int | None  # None: the real dataset's size
    test_images: int | None


FULL = Sizes(
    "paper",
    None,
    repeats=5,
    slice_steps=20,
    metatest_episodes=600,
    reference_episodes=60,
    projection_episodes=100,
    train_images=None,
    test_images=None,
)
SMALL = Sizes(
    "smoke",
    8,
    repeats=1,
    slice_steps=2,
    metatest_episodes=2,
    reference_episodes=1,
    projection_episodes=1,
    train_images=32,
    test_images=16,
)


def default_engine(method: str, device: torch.device) -> str:
    return METHODS.get(method).default_engine(device.type)


def train_task_of(method: str) -> str | None:
    return DEDICATED_TASK if METHODS.get(method).per_bitwidth else None


# ---------------------------------------------------------------- 1. engines


def engine_rows(sizes: Sizes, device: torch.device) -> list[dict[str, Any]]:
    results = []
    for setup in table2_engines.table2_setups():
        r = table2_engines.measure(setup, "mebqat", sizes.scale, sizes.table2_batch, sizes.repeats, device)
        results.append({**r, "cells": [f"Table 2 MEBQAT step, {setup} (batch {r['batch']})"]})
    first_of_family: dict[str, str] = {}
    for table, setup in fewshot_engines.fewshot_setups():
        candidates, config = fewshot_engines.update_candidates(table, setup, sizes.scale, device)
        memory = {name: peak_memory(device, run) for name, run in candidates.items()}
        times = take_turns(candidates, sizes.repeats, device)
        results.append(
            {
                "cells": [f"{config['job']['method']} update, {setup} (B = {config['train']['meta_batch']})"],
                "time": {k: median(v) for k, v in times.items()},
                "memory": memory,
            }
        )
        first_of_family.setdefault(table, setup)
    for table, setup in first_of_family.items():
        full = fewshot_engines.metatest_candidates(
            table, setup, sizes.scale, sizes.metatest_episodes, device, reference=False
        )
        ref = fewshot_engines.metatest_candidates(
            table, setup, sizes.scale, sizes.reference_episodes, device, engines=()
        )
        memory = {name: peak_memory(device, run) for name, run in {**full, **ref}.items()}
        times = {k: median(v) for k, v in take_turns({**full, **ref}, 1, device, warmup=0).items()}
        times["reference"] *= sizes.metatest_episodes / sizes.reference_episodes
        results.append(
            {
                "cells": [
                    f"meta-test, {setup}, {sizes.metatest_episodes} episodes × 9 bitwidths (reference "
                    f"timed on {sizes.reference_episodes}, scaled)"
                ],
                "time": times,
                "memory": memory,
            }
        )
    return results


# ---------------------------------------------------------------- 2. rates with the data path


def synthetic_splits(config: dict[str, Any], sizes: Sizes, device: torch.device) -> dict[str, SupervisedDataset]:
    """Random uint8 images of the real dataset's size and shape, with the dataset's own input pipeline."""
    info = dataset_info(config)
    pipeline = importlib.import_module(info.impl.split(":")[0]).pipeline(config["data"]["normalization"])
    shape = tuple(info.input_shape)
    counts = {"trainval": sizes.train_images or info.sizes["trainval"], "test": sizes.test_images or info.sizes["test"]}

    def split(name: str, count: int, augment: bool) -> SupervisedDataset:
        labels = np.random.default_rng(0).integers(0, info.num_classes, count)
        return SupervisedDataset(
            random_images(count, shape, device, seed=len(name)),
            np.arange(count),
            labels,
            pipeline,
            info,
            name,
            shape,
            augment,
        )

    train, test = split("trainval", counts["trainval"], True), split("test", counts["test"], False)
    return {"trainval": train, "train": train, "val": test, "test": test}


def table2_rates(
    setup: str, method: str, sizes: Sizes, device: torch.device, splits: dict[str, SupervisedDataset]
) -> dict[str, float]:
    """Training images/s over an epoch slice (data path, update, optimizer step) and test images/s."""
    engine = default_engine(method, device)
    overrides = {"data": {"batch_size": sizes.table2_batch}} if sizes.table2_batch else None
    config = job_config(setup, method, "paper", engine, train_task_of(method), overrides)
    if sizes.scale != "paper":  # toy widths on a CPU: the scale's model options
        config["model"]["options"] = job_config(setup, method, sizes.scale, engine, train_task_of(method))["model"][
            "options"
        ]
    runner = create_method(config, engine=engine)
    data = SupervisedData(config, device, "train", splits=splits)
    torch.manual_seed(0)
    model = runner.build_model(data).to(device)
    optimizer = build_optimizer(runner.trainable_parameters(model), config["train"]["optimizer"])
    batches = data.training_batches(1)
    counter = PassCounter()

    def step() -> None:
        x, y = next(batches)
        optimizer.zero_grad(set_to_none=True)
        runner.update(model, (x, y), counter)
        optimizer.step()

    model.train()
    step()  # warm-up
    synchronize(device)
    began = time.perf_counter()
    for _ in range(sizes.slice_steps):
        step()
    synchronize(device)
    train_rate = sizes.slice_steps * data.batch_size / (time.perf_counter() - began)
    test_batches = data._eval_batches(data.select, 0)[: max(2, sizes.slice_steps // 2)]
    task = runner.trained_tasks()[0]
    model.eval()

    def infer() -> None:
        with torch.no_grad():
            for positions in test_batches:
                x, _ = data.select.batch(positions)
                model(x, task)

    infer()
    synchronize(device)
    began = time.perf_counter()
    infer()
    synchronize(device)
    images = sum(len(p) for p in test_batches)
    return {
        "train": train_rate,
        "test": images / (time.perf_counter() - began),
        "engine": engine,
        "batch": data.batch_size,
    }


def fewshot_rates(table: str, setup: str, method: str, sizes: Sizes, device: torch.device) -> dict[str, Any]:
    engine = default_engine(method, device)
    candidates, config = fewshot_engines.update_candidates(
        table, setup, sizes.scale, device, method, train_task_of(method)
    )
    update_time = median(take_turns({engine: candidates[engine]}, sizes.repeats, device)[engine])
    metatest = fewshot_engines.metatest_candidates(
        table,
        setup,
        sizes.scale,
        sizes.projection_episodes,
        device,
        method=method,
        reference=False,
        engines=(engine,),
        train_task=train_task_of(method),
    )
    pairs = sizes.projection_episodes * len(evaluation_tasks(config, None))
    metatest_time = median(take_turns(metatest, 1, device, warmup=0)[engine])
    return {"updates": 1 / update_time, "pairs": pairs / metatest_time, "engine": engine}


def measure_rates(sizes: Sizes, device: torch.device) -> dict[tuple[str, str], dict[str, Any]]:
    rates: dict[tuple[str, str], dict[str, Any]] = {}
    for setup, definition in load_table_setups("table2")["setups"].items():
        splits = synthetic_splits(job_config(setup, "mebqat", "paper"), sizes, device)
        for method in definition["methods"]:
            rates[setup, method] = table2_rates(setup, method, sizes, device, splits)
        del splits
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for table, setup in fewshot_engines.fewshot_setups():
        for method in load_table_setups(table)["setups"][setup]["methods"]:
            rates[setup, method] = fewshot_rates(table, setup, method, sizes, device)
    return rates


def print_rates(rates: dict[tuple[str, str], dict[str, Any]]) -> None:
    rows = []
    for (setup, method), r in rates.items():
        if "train" in r:
            rows.append(
                [
                    setup,
                    method,
                    r["engine"],
                    f"{r['train']:,.0f} training images/s (batch {r['batch']})",
                    f"{r['test']:,.0f} test images/s",
                ]
            )
        else:
            rows.append(
                [
                    setup,
                    method,
                    r["engine"],
                    f"{r['updates']:,.2f} meta-updates/s",
                    f"{r['pairs']:,.1f} meta-test (episode, bitwidth)/s",
                ]
            )
    print_table(["setup", "method", "engine", "training", "evaluation"], rows)


# ---------------------------------------------------------------- 3. torch.compile


def compile_rows(sizes: Sizes, device: torch.device) -> list[list[str]]:
    rows = []
    for setup in table2_engines.table2_setups():
        config = job_config(setup, "mebqat", sizes.scale, "sequential")
        info = dataset_info(config)
        shape = tuple(config["data"]["input_shape"] or info.input_shape)
        x, y = random_batch(sizes.table2_batch or config["data"]["batch_size"], shape, info.num_classes, device)
        candidates: dict[str, Callable[[], Any]] = {}
        for name in ("eager", "compiled"):
            runner = create_method(config, engine="sequential")
            torch.manual_seed(0)
            model = runner.build_model(Classes(info.num_classes)).to(device).train()
            if name == "compiled":
                model.forward = torch.compile(model.forward, dynamic=False)

            def step(runner=runner, model=model, x=x, y=y) -> None:
                model.zero_grad(set_to_none=True)
                runner.update(model, (x, y), PassCounter())

            candidates[name] = step
        try:
            times = {k: median(v) for k, v in take_turns(candidates, sizes.repeats, device, warmup=3).items()}
            rows.append(
                [setup, seconds(times["eager"]), seconds(times["compiled"]), ratio(times["eager"], times["compiled"])]
            )
        except Exception as err:  # a compiler failure is a finding, not a crash of the whole check
            rows.append([setup, "–", f"fails: {type(err).__name__}: {str(err).splitlines()[0][:80]}", "–"])
    return rows


# ---------------------------------------------------------------- 4. projection


def projected_hours(rates: dict[tuple[str, str], dict[str, Any]]) -> list[list[str]]:
    workflow = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    jobs = expand_jobs(workflow, load_matrix(str(ROOT / workflow["matrix"])))
    per_table: dict[str, dict[str, float]] = {}
    for job in jobs.values():
        config = resolve_job(job.spec)
        setup, method = config["job"]["setup"], config["job"]["method"]
        rate, train = rates[setup, method], config["train"]
        tested = len(evaluation_tasks(config, None))
        if "train" in rate:
            sizes = dataset_info(config).sizes
            batch = config["data"]["batch_size"]
            steps = train["steps_per_epoch"] or math.ceil(sizes["trainval"] / batch)
            updates = train["epochs"] * steps
            seconds_ = (
                updates * batch / rate["train"]
                + train["epochs"] * sizes["test"] / rate["test"]
                + tested * sizes["test"] / rate["test"]
            )
        else:
            updates = train["epochs"] * train["steps_per_epoch"]
            validation = train["epochs"] * config["data"]["val_tasks"]
            seconds_ = updates / rate["updates"] + (validation + tested * config["data"]["test_tasks"]) / rate["pairs"]
        entry = per_table.setdefault(job.table, {"jobs": 0, "updates": 0, "seconds": 0.0})
        entry["jobs"] += 1
        entry["updates"] += updates
        entry["seconds"] += seconds_
    rows = [
        [table, str(e["jobs"]), f"{e['updates']:,}", f"{e['seconds'] / 3600:,.1f}"]
        for table, e in sorted(per_table.items())
    ]
    total = sum(e["seconds"] for e in per_table.values()) / 3600
    rows.append(
        [
            "all",
            str(sum(e["jobs"] for e in per_table.values())),
            f"{sum(e['updates'] for e in per_table.values()):,}",
            f"{total:,.1f}",
        ]
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_arguments(parser)
    parser.add_argument("--small", action="store_true", help="toy sizes (smoke widths, a few images): a CPU check")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure torch.compile (default: on a GPU only)",
    )
    args = parser.parse_args()
    device = setup_device(args)
    sizes = SMALL if args.small else FULL
    began = time.perf_counter()
    print(f"# gpu_check: {describe_device(device, args.threads)}; {'toy' if args.small else 'paper'} sizes\n")
    print("## 1. Engines (median of each; ratios above 1: the denominator is faster)\n")
    print_table(*engine_table(engine_rows(sizes, device), ["what"], device))
    print("\n## 2. Rates with the data path (the engine `auto` picks on this device)\n")
    rates = measure_rates(sizes, device)
    print_rates(rates)
    if args.compile if args.compile is not None else device.type == "cuda":
        print("\n## 3. torch.compile of the network, Table 2 MEBQAT step (sequential engine)\n")
        print_table(["setup", "eager", "compiled", "eager ÷ compiled"], compile_rows(sizes, device))
    print("\n## 4. Projected device-hours at the paper's budgets (config/paper.yaml, one seed)\n")
    if args.small:
        print("(toy sizes: these rates are not the paper's networks, so the hours below only show the arithmetic)\n")
    print_table(["table", "jobs", "updates", "device-hours"], projected_hours(rates))
    print(f"\n(measured in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
