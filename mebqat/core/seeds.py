"""Seeds derived from a job's seed: every random stream of a job depends only on (seed, purpose, epoch…),
never on a generator carried across epochs, so a resumed job draws what an uninterrupted one draws."""

from __future__ import annotations

import numpy as np


def derived_seed(*parts: int) -> int:
    """A seed that depends only on ``parts`` (e.g. (seed, epoch)), for reproducible per-epoch streams."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])
