"""Forward and backward passes, counted where they run (Table 3's measured costs).

A "pass" is one forward (or backward) of the network over the step's batch at one bitwidth task; a
vmapped pass over T tasks counts T. Methods call :meth:`PassCounter.forward` / :meth:`backward` at the
point where they run the passes, so the counts follow the code path actually taken (e.g. the
authors' per-task teacher forwards, or a single teacher pass).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PassCounter:
    forward_passes: int = 0
    backward_passes: int = 0
    updates: int = 0

    def forward(self, n: int = 1) -> None:
        self.forward_passes += n

    def backward(self, n: int = 1) -> None:
        self.backward_passes += n

    def update(self) -> None:
        """Mark the end of one optimizer update."""
        self.updates += 1

    def per_update(self) -> dict[str, float | None]:
        if not self.updates:
            return {"forward_passes_per_update": None, "backward_passes_per_update": None}
        return {
            "forward_passes_per_update": self.forward_passes / self.updates,
            "backward_passes_per_update": self.backward_passes / self.updates,
        }

    def state_dict(self) -> dict[str, int]:
        return {"forward_passes": self.forward_passes, "backward_passes": self.backward_passes, "updates": self.updates}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.forward_passes, self.backward_passes = state["forward_passes"], state["backward_passes"]
        self.updates = state["updates"]
