"""Independent float64 NumPy references for the quantizers, written from official-mebqat.md §2.

They share no code with ``mebqat.quant``. Each returns (output, gradient) for the loss Σ g ⊙ output,
where ``g`` is an upstream gradient; parameter gradients (SAT α, LSQ step) are returned separately.
"""

from __future__ import annotations

import numpy as np


def _tanh_normalisation_grad(w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient of Σ g ⊙ (t/M) w.r.t. w, with t = tanh(w), M = max|t| (the arg-max element carries dM)."""
    t = np.tanh(w)
    k = np.argmax(np.abs(t))
    m = np.abs(t).flat[k]
    grad = g * (1 - t**2) / m
    grad.flat[k] -= np.sign(t.flat[k]) * (1 - t.flat[k] ** 2) / m**2 * np.sum(g * t)
    return grad


def dorefa_weight(w: np.ndarray, bits: int | None, g: np.ndarray):
    if bits is None:
        return w.copy(), g.copy()
    e = np.mean(np.abs(w))
    if bits == 1:
        return e * np.sign(w), g.copy()
    t = np.tanh(w)
    u = (t / np.max(np.abs(t)) + 1) / 2
    n = 2.0**bits - 1
    q = np.round(n * u) / n
    return e * (2 * q - 1), e * _tanh_normalisation_grad(w, g)


def dorefa_activation(r: np.ndarray, bits: int | None, g: np.ndarray):
    if bits is None:
        return r.copy(), g.copy()
    n = 2.0**bits - 1
    out = np.round(n * np.clip(r, 0, 1)) / n
    return out, g * ((r >= 0) & (r <= 1))


def sat_weight(
    w: np.ndarray, bits: int | None, g: np.ndarray, rounding: str = "modified", rescale_out_features: int | None = None
):
    if bits is None:
        return w.copy(), g.copy()
    t = np.tanh(w)
    u = (t / np.max(np.abs(t)) + 1) / 2
    if rounding == "modified":
        k = 2.0**bits
        q = np.minimum(np.floor(k * u), k - 1) / k
    else:
        n = 2.0**bits - 1
        q = np.round(n * u) / n
    out = 2 * q - 1
    scale = 1.0
    if rescale_out_features is not None:
        scale = (1 / np.sqrt(rescale_out_features)) / np.std(out, ddof=1)
    # ŵ = 2q − 1 with ∂q/∂u = 1 and u = (t/M + 1)/2  →  ∂ŵ/∂w = ∂(t/M)/∂w (times the constant rescale)
    return out * scale, scale * _tanh_normalisation_grad(w, g)


def sat_activation(x: np.ndarray, bits: int | None, alpha: float, g: np.ndarray):
    """Returns (output, grad_x, grad_alpha)."""
    if bits is None:
        return x.copy(), g.copy(), 0.0
    a = abs(alpha)
    n = 2.0**bits - 1
    c = np.minimum(np.maximum(x, 0), a)
    q = np.round(n * c / a) / n
    out = a * q
    grad_x = g * ((x > 0) & (x < a))
    d_alpha_abs = np.where(x < a, q - c / a, 1.0)
    grad_alpha = np.sum(g * d_alpha_abs) * np.sign(alpha)
    return out, grad_x, grad_alpha


def lsq(
    x: np.ndarray,
    bits: int | None,
    step: float,
    g: np.ndarray,
    signed: bool,
    levels: str = "official",
    grad_scale: float | None = None,
):
    """Returns (output, grad_x, grad_step)."""
    if bits is None:
        return x.copy(), g.copy(), 0.0
    if signed:
        n, p = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    else:
        n, p = 0.0, (2.0**bits if levels == "official" else 2.0**bits - 1)
    v = x / (step + 1e-6)
    out = step * np.round(np.clip(v, n, p))
    inside = (v >= n) & (v <= p)
    if grad_scale is None:
        grad_scale = 1 / np.sqrt(x.size * p)
    coef = np.where(v < n, n, np.where(v > p, p, np.round(v) - v))
    return out, g * inside, grad_scale * np.sum(g * coef)
