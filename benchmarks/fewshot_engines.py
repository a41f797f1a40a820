"""Sequential vs batched (vmap) few-shot engines: wall time of one meta-update and of a meta-test.

    .venv/bin/python benchmarks/fewshot_engines.py                      # Omniglot-shaped, 100 test episodes
    .venv/bin/python benchmarks/fewshot_engines.py --episodes 600 --mini --pn

Sizes follow official-mebqat.md §4.3–§4.5, §5.2 and §7:
* MEBQAT-MAML meta-update, Omniglot-shaped: 20-way 1-shot, 15 queries, meta-batch 16, 5 inner SGD steps
  at lr 0.1, one random task from the 73 LSQ candidates per episode, then the aggregation (÷B, steps ÷
  users, clamp ±10). ``--mini``: MiniImageNet-shaped 5-way 1-shot, 15 queries, meta-batch 4, lr 0.01.
* Meta-test of one model: N episodes × the 9 uniform bitwidths, fine-tuning 5 steps (Omniglot) or 10
  (MiniImageNet), then query inference.
* ``--pn``: one MEBQAT-PN update, 4 tasks on one 60-way 5-shot 5-query Omniglot-shaped episode.

Images are random (timing does not depend on content). All engines run in this one process and take turns
(per repeat of a meta-update, per block of meta-test episodes), so that on a shared machine they meet the
same load; wall and process-CPU seconds are both reported, with sequential/batched ratios of each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from mebqat.data import Episode
from mebqat.fewshot import (InnerLoop, adapt_set, aggregate_meta_gradients, fomaml_batched, fomaml_sequential,
                            maml_metatest_batched, maml_metatest_sequential, model_state, pn_batched, pn_sequential,
                            task_usage)
from mebqat.models import build, parameter_kinds
from mebqat.quant import TaskSampler, calibrate_activation_steps, uniform_tasks


@dataclass(frozen=True)
class Setup:
    dataset: str
    shape: tuple[int, int, int]
    ways: int
    shots: int
    queries: int
    meta_batch: int
    inner_lr: float
    inner_steps: int
    test_steps: int


OMNIGLOT = Setup("omniglot", (1, 28, 28), ways=20, shots=1, queries=15, meta_batch=16, inner_lr=0.1, inner_steps=5,
                 test_steps=5)
MINI = Setup("miniimagenet", (3, 84, 84), ways=5, shots=1, queries=15, meta_batch=4, inner_lr=0.01, inner_steps=5,
             test_steps=10)


def random_episodes(count: int, ways: int, shots: int, queries: int, shape: tuple[int, ...], seed: int) -> Episode:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.stack([torch.randperm(ways, generator=gen) for _ in range(count)])
    return Episode(torch.rand(count, ways * shots, *shape, generator=gen), labels.repeat_interleave(shots, 1),
                   torch.rand(count, ways * queries, *shape, generator=gen), labels.repeat_interleave(queries, 1))


Engine = Callable[[int], object]
"""One run of an engine in round r (a repeat, or a block of meta-test episodes)."""


def interleaved(engines: dict[str, Engine], rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Run every engine once per round, taking turns, so that all of them meet the same machine load over
    time; (wall, process CPU) seconds per engine and round."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    for r in range(rounds):
        for name, engine in engines.items():
            wall, cpu = time.perf_counter(), time.process_time()
            engine(r)
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def report(label: str, times: dict[str, list[tuple[float, float]]], combine: Callable[[list[float]], float]) -> None:
    """One line per engine: combined wall and CPU seconds, and sequential/batched ratios of both."""
    combined = {name: (combine([w for w, _ in values]), combine([c for _, c in values]))
                for name, values in times.items()}
    base_wall, base_cpu = combined["sequential"]
    print(f"\n{label}", flush=True)
    for name, (wall, cpu) in combined.items():
        ratio = "" if name == "sequential" else \
            f"   sequential/batched: wall {base_wall / wall:5.2f}, CPU {base_cpu / cpu:5.2f}"
        print(f"  {name:<28} wall {wall:8.2f} s  CPU {cpu:8.2f} s{ratio}", flush=True)


def compare_repeats(label: str, engines: dict[str, Callable[[], object]], repeats: int) -> None:
    """A warm-up round, then ``repeats`` interleaved rounds; medians."""
    calls = {name: (lambda r, fn=fn: fn()) for name, fn in engines.items()}
    interleaved(calls, 1)
    report(f"{label} (median of {repeats})", interleaved(calls, repeats), statistics.median)


def maml_model(setup: Setup, support: torch.Tensor) -> torch.nn.Module:
    model = build("maml_convnet", dataset=setup.dataset, ways=setup.ways)
    calibrate_activation_steps(model, support, (2, 2))
    return model


def bench_meta_update(setup: Setup, chunks: list[int | None], repeats: int, seed: int) -> None:
    episodes = random_episodes(setup.meta_batch, setup.ways, setup.shots, setup.queries, setup.shape, seed)
    model = maml_model(setup, episodes.support_x[0])
    params, buffers = model_state(model)
    kinds = parameter_kinds(model)
    tasks = TaskSampler("lsq", tasks_per_step=setup.meta_batch, seed=seed).sample()
    usage = task_usage(model, tasks)
    inner = InnerLoop(setup.inner_lr, setup.inner_steps, adapt_set(model))

    def update(engine: Callable[..., object], **kw: object) -> Callable[[], object]:
        def run() -> object:
            result = engine(model, params, buffers, episodes, tasks, inner, **kw)
            return aggregate_meta_gradients(result.grads, kinds, usage)
        return run

    engines = {"sequential": update(fomaml_sequential),
               **{f"batched (chunk {c or 'all'})": update(fomaml_batched, chunk_size=c) for c in chunks}}
    compare_repeats(f"MEBQAT-MAML meta-update, {setup.dataset}-shaped {setup.ways}-way {setup.shots}-shot, "
                    f"{setup.queries} queries, meta-batch {setup.meta_batch}, {setup.inner_steps} inner steps",
                    engines, repeats)


def bench_meta_test(setup: Setup, n_episodes: int, episode_chunks: list[int], block: int, seed: int) -> None:
    """The episodes in blocks of ``block``; per block every engine takes its turn; totals over blocks."""
    episodes = random_episodes(n_episodes, setup.ways, setup.shots, setup.queries, setup.shape, seed)
    model = maml_model(setup, episodes.support_x[0])
    params, buffers = model_state(model)
    tasks = uniform_tasks("lsq")
    inner = InnerLoop(setup.inner_lr, setup.test_steps, adapt_set(model))
    blocks = [Episode(*(f[start:start + block] for f in episodes)) for start in range(0, n_episodes, block)]
    engines: dict[str, Engine] = {
        "sequential": lambda r: maml_metatest_sequential(model, params, buffers, blocks[r], tasks, inner),
        **{f"batched (episode chunk {c})":
           (lambda r, c=c: maml_metatest_batched(model, params, buffers, blocks[r], tasks, inner, episode_chunk=c))
           for c in episode_chunks}}
    report(f"MAML meta-test, {setup.dataset}-shaped {setup.ways}-way {setup.shots}-shot: {n_episodes} episodes × "
           f"{len(tasks)} bitwidths, {setup.test_steps} fine-tuning steps (totals over blocks of {block})",
           interleaved(engines, len(blocks)), sum)


def bench_pn_update(repeats: int, seed: int) -> None:
    episode = Episode(*(f[0] for f in random_episodes(1, 60, 5, 5, OMNIGLOT.shape, seed)))
    model = build("proto_convnet", dataset="omniglot")
    calibrate_activation_steps(model, episode.support_x, (2, 2))
    params, buffers = model_state(model)
    kinds = parameter_kinds(model)
    tasks = TaskSampler("lsq", tasks_per_step=4, seed=seed).sample()
    usage = task_usage(model, tasks)

    def update(engine: Callable[..., object]) -> Callable[[], object]:
        return lambda: aggregate_meta_gradients(engine(model, params, buffers, episode, tasks).grads, kinds, usage)

    compare_repeats("MEBQAT-PN update, omniglot-shaped 60-way 5-shot 5 queries, 4 bitwidth tasks",
                    {"sequential": update(pn_sequential), "batched": update(pn_batched)}, repeats)


def parse_chunks(text: str) -> list[int | None]:
    return [None if part in ("all", "none") else int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100, help="meta-test episodes (the paper: 600)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each engine")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--update-chunks", default="all,4,2", help="vmap chunk sizes for the meta-update")
    parser.add_argument("--test-chunks", default="4,1", help="episode chunk sizes for the batched meta-test")
    parser.add_argument("--block", type=int, default=4, help="meta-test episodes per interleaving round")
    parser.add_argument("--mini", action="store_true", help="also the MiniImageNet-shaped setup")
    parser.add_argument("--pn", action="store_true", help="also one MEBQAT-PN update")
    parser.add_argument("--skip-test", action="store_true", help="only the meta-update(s)")
    parser.add_argument("--skip-update", action="store_true", help="only the meta-test(s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, float32")
    setups = [OMNIGLOT, MINI] if args.mini else [OMNIGLOT]
    for setup in [] if args.skip_update else setups:
        bench_meta_update(setup, parse_chunks(args.update_chunks), args.repeats, args.seed)
    if args.pn and not args.skip_update:
        bench_pn_update(args.repeats, args.seed)
    if not args.skip_test:
        for setup in setups:
            bench_meta_test(setup, args.episodes, [int(c) for c in args.test_chunks.split(",")], args.block,
                            args.seed)


if __name__ == "__main__":
    main()
