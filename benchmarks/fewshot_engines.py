"""Tables 4/5: one meta-update and the meta-test, by engine, beside the per-task reference loop.

    python benchmarks/fewshot_engines.py [--device cpu|cuda] [--scale paper|mini|smoke] [--repeats 3]
        [--episodes 600] [--setups maml_omniglot_20w1s pn_omniglot_20w5s ...] [--no-metatest]

For each setup, the MEBQAT variant of its family (MEBQAT-MAML: a bitwidth task per episode of the
meta-batch, 5 inner SGD steps; MEBQAT-PN: 4 tasks sharing one higher-way episode) at the scale's episode
shapes and network widths, on random images:

* one meta-update by our sequential engine, our batched engine (``vmap`` over episodes or tasks) and the
  reference loop of ``reference_loops.py`` (a fresh network copy per episode/task, as the authors' release);
* the meta-test of one model: ``--episodes`` episodes × the 9 tested bitwidths (MAML: fine-tuning on each
  support set first), by the same three.

The candidates take turns; prints median times, ratios and on a GPU the peak memory.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import reference_loops
import torch
from common import (
    SyntheticEpisodes,
    add_device_arguments,
    dataset_info,
    describe_device,
    engine_table,
    job_config,
    median,
    peak_memory,
    print_table,
    random_episodes,
    setup_device,
    take_turns,
)

from mebqat.core.config import evaluation_tasks, load_table_setups
from mebqat.core.counters import PassCounter
from mebqat.kernels import model_state
from mebqat.methods import create_method

MEBQAT_OF = {"table4": "mebqat_maml", "table5": "mebqat_pn"}
ADAPTED_KINDS = {"weight", "bias"}  # the authors' inner loops and fine-tuning (official §2.3, §4.3)


def fewshot_setups() -> list[tuple[str, str]]:
    """(table, setup) of every few-shot setup."""
    return [(table, setup) for table in MEBQAT_OF for setup in load_table_setups(table)["setups"]]


def _model(config: dict[str, Any], device: torch.device, engine: str, seed: int = 0):
    runner = create_method(config, engine=engine)
    torch.manual_seed(seed)
    model = runner.build_model(None).to(device)
    runner.initialise(model, SyntheticEpisodes(config, device), device)
    return runner, model


def _builder(runner) -> Callable[[], torch.nn.Module]:
    return lambda: runner.build_model(None)


def _adapt(model: torch.nn.Module, runner) -> set[str]:
    return {name for name, kind in runner.kinds(model).items() if kind in ADAPTED_KINDS}


def update_candidates(
    table: str, setup: str, scale: str, device: torch.device, method: str | None = None, train_task: str | None = None
) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    method = method or MEBQAT_OF[table]
    config = job_config(setup, method, scale, "sequential", train_task)
    data, train = config["data"], config["train"]
    ways, queries = data["train_ways"] or data["ways"], data["train_queries"] or data["queries"]
    episodes = random_episodes(
        train["meta_batch"], ways, data["shots"], queries, tuple(dataset_info(config).input_shape), device
    )
    candidates: dict[str, Callable[[], Any]] = {}
    for engine in ("sequential", "batched"):
        runner, model = _model(job_config(setup, method, scale, engine, train_task), device, engine)

        def update(runner=runner, model=model) -> None:
            model.zero_grad(set_to_none=True)
            runner.update(model, episodes, PassCounter())

        candidates[engine] = update
    runner, base = _model(config, device, "sequential")
    build = _builder(runner)
    if table == "table4":
        adapt = _adapt(base, runner)
        candidates["reference"] = lambda: reference_loops.maml_update(
            build,
            base,
            episodes,
            runner.step_tasks(train["meta_batch"]),
            adapt,
            train["inner_lr"],
            train["inner_steps"],
        )
    else:
        one = reference_loops._episode(episodes, 0)
        candidates["reference"] = lambda: reference_loops.pn_update(
            build, base, one, runner.step_tasks(runner.tasks_per_step()), ways
        )
    return candidates, config


def metatest_candidates(
    table: str,
    setup: str,
    scale: str,
    episodes: int,
    device: torch.device,
    method: str | None = None,
    reference: bool = True,
    engines: tuple[str, ...] = ("sequential", "batched"),
    train_task: str | None = None,
) -> dict[str, Callable[[], Any]]:
    method = method or MEBQAT_OF[table]
    config = job_config(setup, method, scale, "sequential", train_task)
    data, evaluate = config["data"], config["evaluate"]
    tasks = evaluation_tasks(config, None)
    test = random_episodes(
        episodes, data["ways"], data["shots"], data["queries"], tuple(dataset_info(config).input_shape), device, seed=1
    )
    chunk = evaluate["episode_chunk"]
    batches = [type(test)(*(f[i : i + chunk] for f in test)) for i in range(0, episodes, chunk)]
    candidates: dict[str, Callable[[], Any]] = {}
    for engine in engines:
        runner, model = _model(job_config(setup, method, scale, engine, train_task), device, engine)

        def metatest(runner=runner, model=model) -> None:
            params, buffers = model_state(model)
            with torch.no_grad() if table == "table5" else torch.enable_grad():
                runner.meta_test(model, params, buffers, batches, tasks, runner.untrained_steps(model, params))

        candidates[engine] = metatest
    if reference:
        runner, base = _model(config, device, "sequential")
        build = _builder(runner)
        if table == "table4":
            adapt = _adapt(base, runner)
            candidates["reference"] = lambda: reference_loops.maml_metatest(
                build, base, test, tasks, adapt, evaluate["finetune_lr"], evaluate["finetune_steps"]
            )
        else:
            candidates["reference"] = lambda: reference_loops.pn_metatest(build, base, test, tasks, data["ways"])
    return candidates


def measure(
    table: str,
    setup: str,
    scale: str,
    repeats: int,
    device: torch.device,
    episodes: int,
    metatest: bool = True,
    reference_metatest: bool = True,
) -> list[dict[str, Any]]:
    results = []
    candidates, config = update_candidates(table, setup, scale, device)
    memory = {name: peak_memory(device, run) for name, run in candidates.items()}
    times = take_turns(candidates, repeats, device)
    results.append(
        {
            "cells": [setup, f"{config['job']['method']} meta-update (B = {config['train']['meta_batch']})"],
            "time": {k: median(v) for k, v in times.items()},
            "memory": memory,
        }
    )
    if metatest:
        candidates = metatest_candidates(table, setup, scale, episodes, device, reference=reference_metatest)
        memory = {name: peak_memory(device, run) for name, run in candidates.items()}
        times = take_turns(candidates, 1, device, warmup=0)
        results.append(
            {
                "cells": [setup, f"meta-test, {episodes} episodes × 9 bitwidths"],
                "time": {k: median(v) for k, v in times.items()},
                "memory": memory,
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_arguments(parser)
    parser.add_argument("--scale", default="paper", choices=["paper", "mini", "smoke"])
    parser.add_argument("--repeats", type=int, default=3, help="timed meta-updates per engine")
    parser.add_argument("--episodes", type=int, default=600, help="meta-test episodes (the paper: 600)")
    parser.add_argument("--setups", nargs="+", default=None, help="default: every Table 4/5 setup")
    parser.add_argument("--no-metatest", action="store_true", help="time the meta-updates only")
    args = parser.parse_args()
    device = setup_device(args)
    chosen = [(t, s) for t, s in fewshot_setups() if args.setups is None or s in args.setups]
    print(f"{describe_device(device, args.threads)}; {args.scale}-scale shapes, {args.repeats} timed meta-updates")
    results = [
        r
        for table, setup in chosen
        for r in measure(table, setup, args.scale, args.repeats, device, args.episodes, not args.no_metatest)
    ]
    print_table(*engine_table(results, ["setup", "what"], device))


if __name__ == "__main__":
    main()
