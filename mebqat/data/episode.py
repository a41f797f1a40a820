"""The episode type shared by the data layer (which samples episodes) and the few-shot engines.

An N-way K-shot episode with Q queries per class. Samples are grouped by class in one class order,
the same in support and query: support rows ``i*K … (i+1)*K − 1`` and query rows ``i*Q … (i+1)*Q − 1``
belong to the i-th class of the episode. Labels are a random permutation of 0..N−1 per episode (the
i-th class gets label ``support_y[i*K]``). A *batch* of episodes stacks every field along a new
leading dimension (``stack_episodes``), which is what ``torch.func.vmap`` maps over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class Episode(NamedTuple):
    support_x: torch.Tensor  # [N*K, C, H, W]   (batched: [B, N*K, C, H, W])
    support_y: torch.Tensor  # [N*K] long
    query_x: torch.Tensor  # [N*Q, C, H, W]
    query_y: torch.Tensor  # [N*Q] long

    @property
    def ways(self) -> int:
        return (
            int(self.support_y.max().item()) + 1
            if self.support_y.dim() == 1
            else int(self.support_y[0].max().item()) + 1
        )

    def to(self, device: torch.device | str) -> Episode:
        return Episode(*(t.to(device) for t in self))


def stack_episodes(episodes: Sequence[Episode]) -> Episode:
    """Stack same-shaped episodes into a batch with a leading episode dimension."""
    if not episodes:
        raise ValueError("cannot stack an empty list of episodes")
    return Episode(*(torch.stack(field) for field in zip(*episodes, strict=True)))


def unstack_episodes(batch: Episode) -> list[Episode]:
    return [Episode(*fields) for fields in zip(*batch, strict=True)]
