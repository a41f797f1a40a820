"""What the benchmark scripts share: the ``--device``/``--threads`` flags, timing that takes turns, peak
memory, job configurations, and synthetic inputs of the real shapes (timing does not depend on content).

Every script measures the things it compares in one process, taking turns per repeat, so that on a shared
machine they meet the same load; each prints ratios, never absolute goals.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from mebqat.core.config import resolve_job
from mebqat.core.registry import DATASETS, ensure_loaded
from mebqat.data.episode import Episode


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu, cuda or cuda:N (default: cuda when available)",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of torch (default 2)")


def setup_device(args: argparse.Namespace) -> torch.device:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    return device


def describe_device(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device}), torch {torch.__version__}, float32"
    return f"CPU, {threads} threads, torch {torch.__version__}, float32"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def take_turns(
    candidates: Mapping[str, Callable[[], Any]], repeats: int, device: torch.device, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall seconds of each candidate, ``repeats`` times each, in turns (after ``warmup`` untimed rounds)."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(warmup + repeats):
        for name, run in candidates.items():
            synchronize(device)
            began = time.perf_counter()
            run()
            synchronize(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - began)
    return times


def median(times: list[float]) -> float:
    return statistics.median(times)


def peak_memory(device: torch.device, run: Callable[[], Any]) -> int | None:
    """Peak bytes allocated on a CUDA device while ``run`` runs (None on a CPU)."""
    if device.type != "cuda":
        run()
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def job_config(
    setup: str,
    method: str,
    scale: str,
    engine: str = "auto",
    train_task: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The resolved configuration of one job, as the workflow would run it."""
    spec: dict[str, Any] = {
        "setup": setup,
        "method": method,
        "scale": scale,
        "overrides": {"train": {"engine": engine}, **(overrides or {})},
    }
    if train_task is not None:
        spec["train_task"] = train_task
    return resolve_job(spec)


def dataset_info(config: Mapping[str, Any]):
    ensure_loaded()
    return DATASETS.get(config["data"]["name"])


class Classes:
    """The one fact a Table 2 method's ``build_model`` reads from its data."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes


def random_images(count: int, shape: tuple[int, ...], device: torch.device, seed: int = 0) -> torch.Tensor:
    """uint8 images drawn on the device itself (a paper-sized SVHN is 2.9 GB)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.randint(0, 256, (count, *shape), dtype=torch.uint8, generator=gen, device=device)


def random_batch(
    batch: int, shape: tuple[int, ...], classes: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.rand(batch, *shape, generator=gen).to(device),
        torch.randint(0, classes, (batch,), generator=gen).to(device),
    )


def random_episodes(
    count: int, ways: int, shots: int, queries: int, shape: tuple[int, ...], device: torch.device, seed: int = 0
) -> Episode:
    """``count`` stacked episodes, samples grouped by class, one label permutation per episode."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.stack([torch.randperm(ways, generator=gen) for _ in range(count)])
    episode = Episode(
        torch.rand(count, ways * shots, *shape, generator=gen),
        labels.repeat_interleave(shots, 1),
        torch.rand(count, ways * queries, *shape, generator=gen),
        labels.repeat_interleave(queries, 1),
    )
    return Episode(*(field.to(device) for field in episode))


def one_episode(episodes: Episode, i: int) -> Episode:
    return Episode(*(field[i] for field in episodes))


class SyntheticEpisodes:
    """What a few-shot method's ``initialise`` reads from its data: one training episode."""

    def __init__(self, config: Mapping[str, Any], device: torch.device) -> None:
        data = config["data"]
        self.shape = tuple(dataset_info(config).input_shape)
        self.episode = one_episode(
            random_episodes(
                1,
                data["train_ways"] or data["ways"],
                data["shots"],
                data["train_queries"] or data["queries"],
                self.shape,
                device,
            ),
            0,
        )

    def calibration_episode(self) -> Episode:
        return self.episode


def seconds(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "–"
    return f"{numerator / denominator:.2f}"


def mebibytes(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:.0f} MiB"


ENGINES = ("sequential", "batched", "reference")


def engine_table(
    results: list[dict[str, Any]], leading: list[str], device: torch.device
) -> tuple[list[str], list[list[str]]]:
    """Header and rows comparing the engines: each result has ``cells`` (the ``leading`` columns), ``time``
    (median seconds per engine) and ``memory`` (peak bytes per engine, on a GPU)."""
    header = [
        *leading,
        "sequential",
        "batched",
        "per-task reference",
        "sequential ÷ batched",
        "reference ÷ sequential",
        "reference ÷ batched",
    ]
    if device.type == "cuda":
        header.append("peak memory (seq / batched / ref)")
    rows = []
    for r in results:
        t = r["time"]
        row = [
            *r["cells"],
            *(seconds(t.get(k)) for k in ENGINES),
            ratio(t.get("sequential"), t.get("batched")),
            ratio(t.get("reference"), t.get("sequential")),
            ratio(t.get("reference"), t.get("batched")),
        ]
        if device.type == "cuda":
            row.append(" / ".join(mebibytes(r["memory"].get(k)) for k in ENGINES))
        rows.append(row)
    return header, rows


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A Markdown table (pastes into the README as it is)."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
