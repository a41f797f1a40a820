"""Table 2: the time of one update of each network, by engine, beside the per-task reference loop.

    python benchmarks/table2_engines.py [--device cpu|cuda] [--scale paper|mini|smoke] [--batch 256]
        [--repeats 5] [--method mebqat|qat|adabits|apdnn] [--setups svhn_cnn8 ...]

One update of the method (MEBQAT: 4 bitwidth tasks, the guaranteed ones first, KD with the authors'
per-task teacher) on one batch at the scale's network widths (paper: the paper's networks and batch 256),
by our sequential engine, our batched engine (``torch.func.vmap`` over the tasks) and the reference loop
of ``reference_loops.py`` (a fresh network copy per task, as the authors' release). All three draw the same
tasks and take turns. Prints median times, sequential ÷ batched, reference ÷ each of ours, and on a GPU
the peak memory of each.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import reference_loops
import torch
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
    setup_device,
    take_turns,
)

from mebqat.core.config import load_table_setups
from mebqat.core.counters import PassCounter
from mebqat.core.tasks import BitwidthTask, TaskSampler
from mebqat.methods import create_method

REFERENCE_METHODS = {"mebqat", "qat"}
DEDICATED_TASK = "(4,4)"


def table2_setups() -> list[str]:
    return list(load_table_setups("table2")["setups"])


def update_candidates(
    setup: str, method: str, scale: str, batch: int | None, device: torch.device, seed: int = 0
) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """``{engine: one update}`` for ``sequential``, ``batched`` and (MEBQAT, QAT) ``reference``, each on
    its own copy of one freshly initialised network, and the resolved configuration."""
    train_task = DEDICATED_TASK if method == "qat" else None
    candidates: dict[str, Callable[[], Any]] = {}
    config = job_config(setup, method, scale, "sequential", train_task)
    batch = batch or config["data"]["batch_size"]
    classes = dataset_info(config).num_classes
    shape = tuple(config["data"]["input_shape"] or dataset_info(config).input_shape)
    x, y = random_batch(batch, shape, classes, device, seed)
    for engine in ("sequential", "batched"):
        config = job_config(setup, method, scale, engine, train_task)
        runner = create_method(config, engine=engine)
        torch.manual_seed(seed)
        model = runner.build_model(Classes(classes)).to(device).train()

        def update(runner=runner, model=model) -> None:
            model.zero_grad(set_to_none=True)
            runner.update(model, (x, y), PassCounter())

        candidates[engine] = update
    if method in REFERENCE_METHODS:
        runner = create_method(config)
        torch.manual_seed(seed)
        base = runner.build_model(Classes(classes)).to(device).train()

        def build(runner=runner) -> torch.nn.Module:
            return runner.build_model(Classes(classes))

        if method == "mebqat":
            options = config["method"]
            sampler = TaskSampler(
                config["model"]["scheme"], options["tasks_per_step"], options["guaranteed"], seed=config["job"]["seed"]
            )
            candidates["reference"] = lambda: reference_loops.mebqat_step(
                build, base, x, y, sampler.sample(), kd=options["kd"]
            )
        else:
            task = BitwidthTask.parse(train_task)
            candidates["reference"] = lambda: reference_loops.dedicated_step(build, base, x, y, task)
    return candidates, {**config, "batch": batch}


def measure(
    setup: str, method: str, scale: str, batch: int | None, repeats: int, device: torch.device, reference: bool = True
) -> dict[str, Any]:
    """Median seconds per update of each engine (and peak memory on a GPU)."""
    candidates, config = update_candidates(setup, method, scale, batch, device)
    if not reference:
        candidates.pop("reference", None)
    memory = {name: peak_memory(device, run) for name, run in candidates.items()}
    times = take_turns(candidates, repeats, device)
    return {
        "cells": [setup, method, str(config["batch"])],
        "batch": config["batch"],
        "time": {name: median(t) for name, t in times.items()},
        "memory": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_arguments(parser)
    parser.add_argument(
        "--scale",
        default="paper",
        choices=["paper", "mini", "smoke"],
        help="network widths (and default batch) of this scale",
    )
    parser.add_argument("--batch", type=int, default=None, help="images per update (default: the scale's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--method", default="mebqat", choices=["mebqat", "qat", "adabits", "apdnn"])
    parser.add_argument("--setups", nargs="+", default=None, help="default: every Table 2 setup")
    args = parser.parse_args()
    device = setup_device(args)
    setups = args.setups or [
        s for s in table2_setups() if args.method in load_table_setups("table2")["setups"][s]["methods"]
    ]
    print(f"{describe_device(device, args.threads)}; {args.scale}-scale widths, {args.repeats} timed updates")
    results = [measure(setup, args.method, args.scale, args.batch, args.repeats, device) for setup in setups]
    print_table(*engine_table(results, ["setup", "method", "batch"], device))


if __name__ == "__main__":
    main()
