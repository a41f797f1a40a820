"""Sequential vs batched MEBQAT step time on the three Table 2 architectures, measured in one run.

    python benchmarks/table2_engines.py [--batch 32] [--repeats 5] [--device cpu|cuda] [--threads 2]
        [--scale paper|mini]

Each step is one MEBQAT update (4 bitwidth tasks: the guaranteed ones, then sampled ones; KD with the
authors' per-task teacher), at the paper's network widths by default. Both engines draw the same tasks.
Prints the median step time of each engine and their ratio (sequential / batched).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mebqat.core.config import resolve_job
from mebqat.core.counters import PassCounter
from mebqat.methods import get_method

SETUPS = {"cifar10_mobilenetv2": (3, 32, 32), "cifar10_preact_resnet20": (3, 32, 32), "svhn_cnn8": (3, 40, 40)}


def step_times(setup: str, engine: str, args: argparse.Namespace) -> list[float]:
    config = resolve_job({"setup": setup, "method": "mebqat", "scale": args.scale,
                          "overrides": {"train": {"engine": engine}}})
    method = get_method("mebqat").cls(config)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = method.build_model(10).to(device).train()
    x = torch.rand(args.batch, *SETUPS[setup], device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    times = []
    for i in range(args.repeats + 1):  # the first step warms up
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        method.step(model, x, y, PassCounter())
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", default="paper", choices=["paper", "mini", "smoke"],
                        help="network widths of this scale (paper: the paper's networks)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"device {args.device}, {args.threads} threads, batch {args.batch}, {args.repeats} timed steps, "
          f"{args.scale}-scale widths")
    print(f"{'setup':<26} {'sequential s':>12} {'batched s':>10} {'ratio':>6}")
    for setup in SETUPS:
        sequential = statistics.median(step_times(setup, "sequential", args))
        batched = statistics.median(step_times(setup, "batched", args))
        print(f"{setup:<26} {sequential:>12.3f} {batched:>10.3f} {sequential / batched:>6.2f}")


if __name__ == "__main__":
    main()
