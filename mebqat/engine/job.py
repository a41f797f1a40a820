"""One job end to end in one process: train, evaluate, log to MLflow (``mebqat run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch


def run_job(config: Mapping[str, Any], out: str | Path, *, device: str | None = None, threads: int | None = None,
            replace_stale: bool = False, track: bool = True, uri: str | None = None) -> dict[str, Any]:
    from ..methods import get_method

    if threads:
        torch.set_num_threads(threads)
    if get_method(config["job"]["method"]).kind == "supervised":
        from .supervised import evaluate, train
    else:
        from .fewshot import evaluate, train  # type: ignore[no-redef]
    train(config, out, device=device, replace_stale=replace_stale)
    metrics = evaluate(out, device=device)
    if track:
        from ..tracking import log_run

        log_run(out, uri)
    return metrics
