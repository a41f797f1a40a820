"""Synthetic few-shot material for the algorithm tests: small nets and class-conditional random episodes.

Each class of an episode is a random "prototype" image; its samples are the prototype plus Gaussian
noise, so a few SGD steps or prototypes can actually learn something. Episodes follow the episode
contract (class-grouped, one class order, a random label permutation per episode).
"""

from __future__ import annotations

import torch

from mebqat.data import Episode, stack_episodes
from mebqat.kernels import model_state
from mebqat.models import build, parameter_kinds
from mebqat.quant import calibrate_activation_steps

SHAPE = (1, 16, 16)


def make_episode(
    ways: int,
    shots: int,
    queries: int,
    generator: torch.Generator,
    dtype=torch.float64,
    shape=SHAPE,
    noise: float = 0.3,
) -> Episode:
    prototypes = torch.rand(ways, *shape, generator=generator, dtype=dtype)
    labels = torch.randperm(ways, generator=generator)

    def draw(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = prototypes.repeat_interleave(per_class, 0)
        x = x + noise * torch.randn(x.shape, generator=generator, dtype=dtype)
        return x, labels.repeat_interleave(per_class)

    return Episode(*draw(shots), *draw(queries))


def make_batch(count: int, ways: int, shots: int, queries: int, seed: int, dtype=torch.float64, shape=SHAPE) -> Episode:
    generator = torch.Generator().manual_seed(seed)
    return stack_episodes([make_episode(ways, shots, queries, generator, dtype, shape) for _ in range(count)])


def small_net(name: str, dtype=torch.float64, seed: int = 0, calibration: torch.Tensor | None = None, **kw):
    """A small few-shot net (16×16 input, 8 channels), LSQ activation steps calibrated at (2,2)."""
    torch.manual_seed(seed)
    kw.setdefault("input_shape", SHAPE)
    kw.setdefault("hidden", 8)
    model = build(name, **kw).to(dtype)
    if calibration is None:
        calibration = torch.rand(10, *kw["input_shape"], generator=torch.Generator().manual_seed(seed), dtype=dtype)
    calibrate_activation_steps(model, calibration, (2, 2))
    return model


def tie_safe(model, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Parameters under which the batched and the sequential engines break max-pool ties alike.

    A quantized conv input has few levels, so neighbouring conv outputs are often *exactly* equal in exact
    arithmetic, and the 2×2 max-pool then has to pick one of them. Where the (quantized) weights differ
    along the vmapped dimension (per episode after adaptation, per task after quantization), vmap runs a
    grouped convolution that adds the bias in another order than the plain one, and a last-bit difference
    decides such a tie differently (the gradient then flows to another, equally valid, element). With
    power-of-two LSQ steps every quantized product is a dyadic rational and sums of them are exact in
    float64 in any order; with zero conv biases (kept out of the inner loop) nothing inexact is added.
    Exact ties then stay exact in both engines and are broken by the same rule.
    """
    kinds = parameter_kinds(model)
    safe = {}
    for name, value in params.items():
        if kinds[name] in ("weight_step", "activation_step"):
            value = torch.exp2(torch.round(torch.log2(value)))
        elif kinds[name] == "bias" and name.startswith("features."):
            value = torch.zeros_like(value)
        safe[name] = value
    return safe


def state(model, safe: bool = False):
    params, buffers = model_state(model)
    return (tie_safe(model, params) if safe else params), buffers


def max_relative_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest |a − b| over all tensors, relative to the largest |b| (gradients that are zero in exact
    arithmetic, e.g. of a bias right before a BatchNorm, hold only rounding noise)."""
    scale = max(v.abs().max().item() for v in b.values())
    return max((a[k] - b[k]).abs().max().item() for k in b) / scale
