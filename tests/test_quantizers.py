"""Each quantizer against the independent float64 reference (tests/reference_quant.py), on fresh random
tensors: forward values, level counts, ranges, the 1-bit sign case, FP identity, and the
straight-through gradients including SAT's α gradient and LSQ's step gradient."""

from __future__ import annotations

import numpy as np
import pytest
import reference_quant as ref
import torch

from mebqat.quant import quantize_activation, quantize_weight

BITS = [1, 2, 3, 4, 5, 8, 16, None]
MULTI_BITS = [2, 3, 4, 5, 8, 16, None]


def _tensor(rng: np.random.Generator, shape=(32, 16, 3, 3), scale=0.3) -> torch.Tensor:
    return torch.tensor(rng.normal(0, scale, size=shape), dtype=torch.float64, requires_grad=True)


def _run(fn, x: torch.Tensor, g: np.ndarray, *params: torch.Tensor):
    out = fn(x)
    (out * torch.tensor(g)).sum().backward()
    return out.detach().numpy(), x.grad.numpy(), [p.grad for p in params]


# ---------------------------------------------------------------- forward and gradient vs reference


@pytest.mark.parametrize("bits", BITS)
def test_dorefa_weight_matches_reference(bits, rng_seed):
    rng = np.random.default_rng(rng_seed)
    w = _tensor(rng)
    g = rng.normal(size=w.shape)
    out, grad, _ = _run(lambda t: quantize_weight(t, bits, "dorefa"), w, g)
    ref_out, ref_grad = ref.dorefa_weight(w.detach().numpy(), bits, g)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bits", BITS)
def test_dorefa_activation_matches_reference(bits, rng_seed):
    rng = np.random.default_rng(rng_seed)
    r = torch.tensor(rng.uniform(-0.5, 1.5, size=(64, 8, 5, 5)), requires_grad=True)
    r.data[0, 0, 0, :3] = torch.tensor([0.0, 1.0, 1.0 + 1e-9])  # the inclusive [0, 1] gradient mask
    g = rng.normal(size=r.shape)
    out, grad, _ = _run(lambda t: quantize_activation(t, bits, "dorefa"), r, g)
    ref_out, ref_grad = ref.dorefa_activation(r.detach().numpy(), bits, g)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(grad, ref_grad)


@pytest.mark.parametrize("rounding", ["modified", "original"])
@pytest.mark.parametrize("rescale", [None, 10])
@pytest.mark.parametrize("bits", MULTI_BITS)
def test_sat_weight_matches_reference(bits, rounding, rescale, rng_seed):
    rng = np.random.default_rng(rng_seed)
    w = _tensor(rng, shape=(10, 64) if rescale else (16, 8, 3, 3))
    g = rng.normal(size=w.shape)
    out, grad, _ = _run(
        lambda t: quantize_weight(t, bits, "sat", rounding=rounding, rescale_out_features=rescale), w, g
    )
    ref_out, ref_grad = ref.sat_weight(w.detach().numpy(), bits, g, rounding, rescale if bits is not None else None)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bits", MULTI_BITS)
@pytest.mark.parametrize("alpha_value", [8.0, 1.7, -2.5])
def test_sat_activation_and_alpha_gradient_match_reference(bits, alpha_value, rng_seed):
    rng = np.random.default_rng(rng_seed)
    x = torch.tensor(rng.uniform(-1, 4, size=(128, 16)), requires_grad=True)
    x.data[0, :2] = torch.tensor([abs(alpha_value), 0.0])  # x = α' gets ∂/∂α' = 1 and no ∂/∂x
    alpha = torch.tensor(alpha_value, dtype=torch.float64, requires_grad=True)
    g = rng.normal(size=x.shape)
    out, grad, (grad_alpha,) = _run(lambda t: quantize_activation(t, bits, "sat", alpha=alpha), x, g, alpha)
    ref_out, ref_grad, ref_grad_alpha = ref.sat_activation(x.detach().numpy(), bits, alpha_value, g)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(grad, ref_grad)
    if bits is None:
        assert grad_alpha is None or float(grad_alpha) == 0.0
    else:
        np.testing.assert_allclose(float(grad_alpha), ref_grad_alpha, rtol=1e-9)


@pytest.mark.parametrize("bits", MULTI_BITS)
@pytest.mark.parametrize("grad_scale", [None, 0.37])
def test_lsq_weight_and_step_gradient_match_reference(bits, grad_scale, rng_seed):
    rng = np.random.default_rng(rng_seed)
    w = _tensor(rng, scale=0.05)
    step_value = float(rng.uniform(0.005, 0.05))
    step = torch.tensor(step_value, dtype=torch.float64, requires_grad=True)
    g = rng.normal(size=w.shape)
    out, grad, (grad_step,) = _run(
        lambda t: quantize_weight(t, bits, "lsq", step=step, grad_scale=grad_scale), w, g, step
    )
    ref_out, ref_grad, ref_grad_step = ref.lsq(
        w.detach().numpy(), bits, step_value, g, signed=True, grad_scale=grad_scale
    )
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(grad, ref_grad)
    if bits is not None:
        np.testing.assert_allclose(float(grad_step), ref_grad_step, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bits", MULTI_BITS)
@pytest.mark.parametrize("levels", ["official", "exact"])
def test_lsq_activation_and_step_gradient_match_reference(bits, levels, rng_seed):
    rng = np.random.default_rng(rng_seed)
    x = torch.tensor(np.maximum(rng.normal(0.5, 1.0, size=(64, 8, 4, 4)), 0), requires_grad=True)
    step_value = float(rng.uniform(0.02, 0.5))
    step = torch.tensor(step_value, dtype=torch.float64, requires_grad=True)
    g = rng.normal(size=x.shape)
    out, grad, (grad_step,) = _run(lambda t: quantize_activation(t, bits, "lsq", step=step, levels=levels), x, g, step)
    ref_out, ref_grad, ref_grad_step = ref.lsq(x.detach().numpy(), bits, step_value, g, signed=False, levels=levels)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(grad, ref_grad)
    if bits is not None:
        np.testing.assert_allclose(float(grad_step), ref_grad_step, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("bits", [2, 3, 4, 8, 16])
def test_lsq_fused_node_is_bitwise_the_expression_form(bits, signed, dtype, rng_seed):
    """Python bitwidths take LSQ's fused autograd node; it must give exactly the straight-through
    expressions' values, input and step gradients, also at the clipping bounds and under torch.func."""
    from mebqat.quant import lsq

    rng = np.random.default_rng(rng_seed)
    step = torch.tensor(float(rng.uniform(0.05, 0.3)), dtype=dtype, requires_grad=True)
    x = torch.tensor(rng.normal(0, 2 ** (bits - 1) * 0.15, size=(6, 4, 5, 5)), dtype=dtype, requires_grad=True)
    n, p = lsq.bounds(bits, x, signed)
    x.data.view(-1)[:3] = torch.tensor([n, p, p + 0.5], dtype=dtype) * (step.detach() + lsq.EPS)
    g = torch.tensor(rng.normal(size=x.shape), dtype=dtype)
    results = []
    for fake_quant in (lsq._fake_quant, lsq._fake_quant_expression):
        x.grad = step.grad = None
        out = fake_quant(x, step, n, p, None)
        (out * g).sum().backward()
        grads = torch.func.grad(
            lambda s, t, fake_quant=fake_quant: (fake_quant(t, s, n, p, 0.5) * g).sum(), argnums=(0, 1)
        )(step, x)
        results.append([out.detach(), x.grad, step.grad, *grads])
    for fused, expression in zip(*results, strict=True):
        assert torch.equal(fused, expression)
    with torch.no_grad():  # inference takes the forward alone
        assert torch.equal(lsq._fake_quant(x, step, n, p, None), results[1][0])


# ---------------------------------------------------------------- levels, ranges, special cases (float32)


def _levels(t: torch.Tensor) -> np.ndarray:
    return np.unique(t.detach().numpy())


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_dorefa_weight_levels_and_range(bits):
    w = torch.randn(20000) * 0.5
    out = quantize_weight(w, bits, "dorefa")
    e = w.abs().mean().item()
    levels = _levels(out)
    n = 2**bits - 1
    assert len(levels) == 2**bits
    np.testing.assert_allclose(levels, e * (2 * np.arange(n + 1) / n - 1), rtol=1e-6)


def test_dorefa_one_bit_is_scaled_sign_with_identity_gradient():
    w = torch.tensor([-0.7, -0.1, 0.0, 0.2, 1.4], requires_grad=True)
    out = quantize_weight(w, 1, "dorefa")
    e = w.detach().abs().mean().item()
    np.testing.assert_allclose(out.detach().numpy(), [-e, -e, 0.0, e, e], rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones(5))  # no clipping at |w| > 1


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_dorefa_activation_levels_and_range(bits):
    out = quantize_activation(torch.rand(10000) * 2 - 0.5, bits, "dorefa")
    assert len(_levels(out)) == 2**bits
    assert out.min() == 0 and out.max() == 1


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_sat_weight_levels_and_range(bits):
    w = torch.randn(20000) * 0.5
    modified = _levels(quantize_weight(w, bits, "sat", rounding="modified"))
    original = _levels(quantize_weight(w, bits, "sat", rounding="original"))
    assert len(modified) == len(original) == 2**bits
    # modified: {−1, −1 + 2/2^b, …, 1 − 2/2^b} (no +1); original: symmetric in [−1, 1]
    np.testing.assert_allclose(modified, -1 + 2 * np.arange(2**bits) / 2**bits, atol=1e-6)
    np.testing.assert_allclose(original, 2 * np.arange(2**bits) / (2**bits - 1) - 1, atol=1e-6)


def test_sat_classifier_rescale_sets_std():
    out = quantize_weight(torch.randn(10, 1280) * 0.02, 4, "sat", rescale_out_features=10)
    assert out.std().item() == pytest.approx(1 / np.sqrt(10), rel=1e-5)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_sat_activation_levels_within_alpha(bits):
    alpha = torch.tensor(3.0)
    out = quantize_activation(torch.rand(20000) * 5 - 1, bits, "sat", alpha=alpha)
    levels = _levels(out)
    assert len(levels) == 2**bits
    np.testing.assert_allclose(levels, 3.0 * np.arange(2**bits) / (2**bits - 1), rtol=1e-6)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_lsq_levels_official_vs_exact(bits):
    step = torch.tensor(0.1)
    x = torch.rand(20000) * 0.2 * 2**bits
    official = _levels(quantize_activation(x, bits, "lsq", step=step, levels="official"))
    exact = _levels(quantize_activation(x, bits, "lsq", step=step, levels="exact"))
    assert len(official) == 2**bits + 1  # the authors' p = 2^b: one level more than b bits hold
    assert len(exact) == 2**bits
    weights = _levels(quantize_weight(torch.randn(20000), bits, "lsq", step=torch.tensor(0.5 / 2 ** (bits - 1))))
    assert len(weights) == 2**bits and weights.min() < 0 < weights.max()


@pytest.mark.parametrize("scheme, params", [("dorefa", {}), ("sat", {}), ("lsq", {"step": 0.1})])
def test_full_precision_is_identity(scheme, params):
    w = torch.randn(50, requires_grad=True)
    x = (torch.randn(50) * 5).requires_grad_()  # FP activations are unclipped
    act_params = {"alpha": torch.tensor(1.0)} if scheme == "sat" else params
    for fn, t, kw in ((quantize_weight, w, params), (quantize_activation, x, act_params)):
        for fp in (None, 32):
            out = fn(t, fp, scheme, **kw)
            assert torch.equal(out, t)
    quantize_weight(w, None, scheme, **params).sum().backward()
    assert torch.equal(w.grad, torch.ones(50))


# ---------------------------------------------------------------- tensor bitwidths and bad input


@pytest.mark.parametrize(
    "scheme, weight_params, act_params",
    [
        ("dorefa", {}, {}),
        ("sat", {"rounding": "modified", "rescale_out_features": 10}, {"alpha": torch.tensor(2.0)}),
        ("lsq", {"step": torch.tensor(0.05)}, {"step": torch.tensor(0.2), "levels": "exact"}),
    ],
)
def test_tensor_bitwidth_equals_python_bitwidth(scheme, weight_params, act_params):
    w, x = torch.randn(10, 40) * 0.3, torch.rand(8, 40) * 3
    for bits in ([1] if scheme == "dorefa" else []) + [2, 3, 6, 8, 16, None]:
        code = torch.tensor(32 if bits is None else bits)
        assert torch.equal(
            quantize_weight(w, code, scheme, **weight_params), quantize_weight(w, bits, scheme, **weight_params)
        )
        assert torch.equal(
            quantize_activation(x, code, scheme, **act_params), quantize_activation(x, bits, scheme, **act_params)
        )


@pytest.mark.parametrize(
    "scheme, params, bad",
    [
        ("sat", {}, 1),
        ("lsq", {"step": 0.1}, 1),
        ("dorefa", {}, 0),
        ("dorefa", {}, -3),
        ("dorefa", {}, 33),
    ],
)
def test_unsupported_python_bitwidth_is_refused(scheme, params, bad):
    with pytest.raises(ValueError, match=f"bitwidth {bad}"):
        quantize_weight(torch.randn(4), bad, scheme, **params)


def test_unsupported_tensor_bitwidth_gives_nan_not_a_silent_result():
    out = quantize_weight(torch.randn(4), torch.tensor(1), "sat")
    assert torch.isnan(out).all()


def test_bad_options_are_refused_with_their_name():
    with pytest.raises(ValueError, match="rounding"):
        quantize_weight(torch.randn(4), 2, "sat", rounding="nearest")
    with pytest.raises(ValueError, match="levels"):
        quantize_activation(torch.rand(4), 2, "lsq", step=0.1, levels="2^b")
    with pytest.raises(ValueError, match="unknown quantizer family 'pact'"):
        quantize_weight(torch.randn(4), 2, "pact")
    with pytest.raises(TypeError, match="bitwidth"):
        quantize_weight(torch.randn(4), 2.5, "dorefa")
