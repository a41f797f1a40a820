"""The batched input pipeline equals the per-image operations it replaces (torchvision's RandomCrop with zero
padding and RandomHorizontalFlip), for the offsets and flips its generator draws."""

import torch
from torch.nn import functional as F

from mebqat.data.transforms import InputPipeline, random_crop, random_flip


def test_random_crop_is_a_zero_padded_crop_at_the_drawn_offsets():
    images = torch.randint(0, 256, (37, 3, 8, 6), dtype=torch.uint8)
    cropped = random_crop(images, 2, torch.Generator().manual_seed(5))
    replay = torch.Generator().manual_seed(5)
    dy = torch.randint(0, 5, (37,), generator=replay)
    dx = torch.randint(0, 5, (37,), generator=replay)
    assert len(set(zip(dy.tolist(), dx.tolist(), strict=True))) > 10  # many offsets drawn, the corners included or not
    for i in range(37):
        padded = F.pad(images[i], (2, 2, 2, 2))
        assert torch.equal(cropped[i], padded[:, dy[i] : dy[i] + 8, dx[i] : dx[i] + 6])
    assert cropped.dtype == torch.uint8 and cropped.shape == images.shape


def test_random_flip_mirrors_the_drawn_half():
    images = torch.randint(0, 256, (64, 1, 4, 5), dtype=torch.uint8)
    flipped = random_flip(images, torch.Generator().manual_seed(1))
    chosen = torch.rand(64, generator=torch.Generator().manual_seed(1)) < 0.5
    assert 10 < int(chosen.sum()) < 54
    for i in range(64):
        assert torch.equal(flipped[i], images[i].flip(-1) if chosen[i] else images[i])


def test_pipeline_output_is_the_normalised_grid():
    images = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8)
    stats = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    x = InputPipeline("dorefa", stats)(images, augment=False)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in stats)
    assert torch.allclose(x, (images.float() / 255 - mean) / std)
    assert torch.equal(InputPipeline("sat", None)(images, augment=False) * 255, images.float())
