"""What both training engines (supervised and few-shot) keep across epochs and across a kill: the
resumable components, the RNG states, the epoch reached, the best selection score and the training wall
time; the per-epoch history, the `best` and `last` checkpoints, and the final train_summary.json."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from ..core.counters import PassCounter
from ..core.hashing import config_hash
from ..models import parameter_counts
from .rundir import RunDir, write_json
from .runtime import rng_state, set_rng_state


class TrainingProgress:
    """``components`` maps checkpoint keys to objects with ``state_dict``/``load_state_dict`` (model,
    optimizer, scheduler, method, counter, sampler, ...); ``components["model"]`` is the trained network."""

    def __init__(self, run: RunDir, config: Mapping[str, Any], components: Mapping[str, Any]) -> None:
        self.run, self.config, self.components = run, config, dict(components)
        self.hash = config_hash(config)
        self.epoch = 0
        self.best: dict[str, Any] = {"epoch": None, "score": -math.inf}
        self.elapsed = 0.0
        self.last_record: dict[str, Any] | None = None

    def resume(self) -> bool:
        """Restore everything from the last epoch checkpoint, if there is one (True); else start clean."""
        if not self.run.last.exists():
            self.run.history.unlink(missing_ok=True)
            return False
        state = self.run.load_checkpoint(self.run.last, self.config)
        for key, component in self.components.items():
            component.load_state_dict(state[key])
        set_rng_state(state["rng"])
        self.epoch, self.best, self.elapsed = state["epoch"], state["best"], state["elapsed"]
        self.run.truncate_history(self.epoch)
        return True

    def end_epoch(
        self, epoch: int, seconds: float, train_loss: float, score: float, select_split: str, lr: float
    ) -> bool:
        """Record a finished epoch: the best checkpoint when the score improved, the history line, then
        the last checkpoint (written last, so a kill in between replays this epoch). True if improved."""
        self.epoch = epoch
        self.elapsed += seconds
        improved = score > self.best["score"]
        model: nn.Module = self.components["model"]
        if improved:
            self.best = {"epoch": epoch, "score": score}
            self.run.save_checkpoint(
                self.run.best, {"config_hash": self.hash, "epoch": epoch, "score": score, "model": model.state_dict()}
            )
        self.last_record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "select_accuracy": score,
            "select_split": select_split,
            "lr": lr,
            "best": improved,
            "elapsed_s": self.elapsed,
        }
        self.run.append_history(self.last_record)
        self.run.save_checkpoint(
            self.run.last,
            {
                "config_hash": self.hash,
                "epoch": epoch,
                **{key: component.state_dict() for key, component in self.components.items()},
                "rng": rng_state(),
                "best": self.best,
                "elapsed": self.elapsed,
            },
        )
        return improved

    def write_summary(
        self,
        epochs: int,
        counter: PassCounter,
        trained_tasks: list[Any],
        select_split: str,
        engine: str,
        memory_format: str,
    ) -> None:
        counts = parameter_counts(self.components["model"])
        write_json(
            self.run.summary,
            {
                "epochs": epochs,
                "updates": counter.updates,
                **counter.per_update(),
                "forward_passes": counter.forward_passes,
                "backward_passes": counter.backward_passes,
                "trained_tasks": [str(t) for t in trained_tasks],
                "best_epoch": self.best["epoch"],
                "best_score": self.best["score"],
                "select_split": select_split,
                "train_wall_time_s": self.elapsed,
                "config_hash": self.hash,
                "engine": engine,
                "memory_format": memory_format,
                "stored_parameters": counts["params"] + counts["quantizer_params"],
                "stored_buffers": counts["bn_running_stats"],
            },
        )
