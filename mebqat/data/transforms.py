"""Input pipelines of the paper (official-mebqat.md §6): augmentation, resizing and per-scheme
normalisation. DoReFa ("Yu21") runs normalise per channel; SAT runs feed the 1/255 pixel grid."""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Per-channel (mean, std) of the authors' code, computed over each dataset's training images.
DOREFA_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images ``[N, C, H, W]`` on the [0, 1] scale."""
    x = images.astype(np.float64) / 255.0
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def supervised_transform(*, normalization: str, stats: tuple[Sequence[float], Sequence[float]] | None,
                         resize: int | None = None, crop: tuple[int, int] | None = None, flip: bool = False):
    """PIL image -> float tensor: [Resize] [RandomCrop(size, padding) + RandomHorizontalFlip] ToTensor [Normalize].

    ``crop`` is ``(size, padding)``. ``normalization``: ``dorefa`` normalises with ``stats``; ``sat`` and
    ``none`` stop at ToTensor (the 1/255 grid, which is what SAT's quantizer expects)."""
    from torchvision import transforms as T

    steps = []
    if resize is not None:
        steps.append(T.Resize(resize))
    if crop is not None:
        steps.append(T.RandomCrop(crop[0], padding=crop[1]))
    if flip:
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.ToTensor())
    if normalization == "dorefa":
        if stats is None:
            raise ValueError("dorefa normalisation needs per-channel statistics")
        steps.append(T.Normalize(*stats))
    return T.Compose(steps)
