"""Input pipelines of the paper (official-mebqat.md §6): augmentation, resizing and per-scheme
normalisation. DoReFa ("Yu21") runs normalise per channel; SAT runs feed the 1/255 pixel grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

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


@dataclass(frozen=True)
class InputPipeline:
    """uint8 images ``[B, C, H, W]`` → the network's float input, on whatever device holds them:
    [RandomCrop(H, padding) + RandomHorizontalFlip when augmenting] → ``x / 255`` → [Normalize].

    The same operations and distributions as torchvision's ``RandomCrop(padding=p)`` (zero padding),
    ``RandomHorizontalFlip()``, ``ToTensor()`` and ``Normalize``, applied to a whole batch at once from a
    seeded generator instead of per image through PIL. ``normalization``: ``dorefa`` normalises with
    ``stats``; ``sat`` and ``none`` stop at the 1/255 grid (what SAT's quantizer expects)."""

    normalization: str
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None
    crop_padding: int | None = None
    flip: bool = False

    def __post_init__(self) -> None:
        if self.normalization == "dorefa" and self.stats is None:
            raise ValueError("dorefa normalisation needs per-channel statistics")

    @property
    def augments(self) -> bool:
        return self.crop_padding is not None or self.flip

    def __call__(self, images: torch.Tensor, augment: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"the input pipeline takes uint8 [B, C, H, W] images, got {images.dtype} {tuple(images.shape)}"
            )
        if augment and self.crop_padding:
            images = random_crop(images, self.crop_padding, generator)
        if augment and self.flip:
            images = random_flip(images, generator)
        x = images.float().div_(255)
        if self.normalization == "dorefa":
            assert self.stats is not None  # __post_init__ refuses dorefa without them
            mean, std = (torch.tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1) for v in self.stats)
            x = x.sub_(mean).div_(std)
        return x


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator | None) -> torch.Tensor:
    """Each image zero-padded by ``padding`` and cropped back to its size at a uniform random offset."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    device = images.device
    dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    windows = padded.unfold(2, height, 1).unfold(3, width, 1)  # a view: [B, C, 2p+1, 2p+1, H, W]
    return windows[torch.arange(batch, device=device), :, dy, dx]


def random_flip(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Each image mirrored left-right with probability ½."""
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def resize_images(images: torch.Tensor, size: int, chunk: int = 8192) -> torch.Tensor:
    """uint8 ``[N, C, h, w]`` → ``[N, C, size, size]`` by antialiased bilinear interpolation (torchvision's
    tensor resize, which follows PIL's ``Resize``), in chunks written into one preallocated result, so that
    memory holds the input, the result and one chunk; done once at load time."""
    from torchvision.transforms.v2 import functional as TF

    if images.shape[-2:] == (size, size):
        return images
    resized = images.new_empty((len(images), images.shape[1], size, size))
    for start in range(0, len(images), chunk):
        resized[start : start + chunk] = TF.resize(images[start : start + chunk], [size, size], antialias=True)
    return resized
