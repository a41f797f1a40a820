"""The bitwidth is data: one vmap over a batch of bitwidth tasks equals a Python loop over them,
for outputs and for gradients, for every quantizer and every model."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad, vmap

from mebqat.models import build
from mebqat.quant import BitwidthTask as T
from mebqat.quant import calibrate_activation_steps, quantize_activation, quantize_weight, task_tensor


def _code(bits):
    return 32 if bits is None else bits


QUANTIZER_CASES = {
    "dorefa-weight": (lambda x, b, p: quantize_weight(x, b, "dorefa"), [1, 2, 5, 16, None]),
    "dorefa-activation": (lambda x, b, p: quantize_activation(x, b, "dorefa"), [1, 3, 8, None]),
    "sat-weight": (lambda x, b, p: quantize_weight(x, b, "sat", rescale_out_features=10), [2, 3, 8, None]),
    "sat-activation": (lambda x, b, p: quantize_activation(x, b, "sat", alpha=p), [2, 4, 16, None]),
    "lsq-weight": (lambda x, b, p: quantize_weight(x, b, "lsq", step=p), [2, 3, 8, None]),
    "lsq-activation": (lambda x, b, p: quantize_activation(x, b, "lsq", step=p, levels="exact"), [2, 5, 16, None]),
}


@pytest.mark.parametrize("case", QUANTIZER_CASES)
def test_quantizer_vmap_over_bitwidths_equals_loop(case, rng_seed):
    fn, bits = QUANTIZER_CASES[case]
    gen = torch.Generator().manual_seed(rng_seed)
    x = torch.randn(10, 30, generator=gen).abs() * 0.6
    param = torch.tensor(0.4 if "lsq" in case else 1.3)
    upstream = torch.randn(10, 30, generator=gen)

    def loss(x, p, b):
        return (fn(x, b, p) * upstream).sum()

    codes = torch.tensor([_code(b) for b in bits])
    outputs = vmap(fn, in_dims=(None, 0, None))(x, codes, param)
    grads_x, grads_p = vmap(grad(loss, argnums=(0, 1)), in_dims=(None, None, 0))(x, param, codes)
    for i, b in enumerate(bits):
        assert torch.equal(outputs[i], fn(x, b, param)), b
        gx, gp = grad(loss, argnums=(0, 1))(x, param, b)
        assert torch.equal(grads_x[i], gx), b
        assert torch.allclose(grads_p[i], gp, rtol=1e-6, atol=1e-7), b


MODEL_CASES = {
    "mobilenetv2_cifar": (dict(dropout=0.0), (3, 32, 32), [T(None, None), T(2, 2), T(16, None), T(4, 8)]),
    "preact_resnet20": (dict(expand=2), (3, 32, 32), [T(None, None), T(1, 1), T(1, None), T(4, 8)]),
    "cnn_svhn": (dict(dropout=0.0), (3, 40, 40), [T(None, None), T(1, 1), T(3, None), T(8, 2)]),
    "maml_convnet": (dict(dataset="omniglot", ways=5), (1, 28, 28), [T(2, 2), T(4, None), T(None, None), T(8, 3)]),
    "maml_convnet-per-bitwidth": (
        dict(
            dataset="omniglot",
            ways=5,
            weight_options={"per_bitwidth": True},
            activation_options={"per_bitwidth": True, "levels": "exact"},
        ),
        (1, 28, 28),
        [T(2, 2), T(16, None), T(None, None), T(5, 7)],
    ),
    "proto_convnet": (dict(dataset="miniimagenet"), (3, 84, 84), [T(3, 3), T(None, None), T(2, None), T(7, 16)]),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_vmap_over_bitwidth_tasks_equals_loop(case):
    """float64, because in float32 the vmapped (grouped) convolution rounds differently from the plain
    one by ~1e-7, and quantizers amplify such differences wherever a value sits on a rounding boundary."""
    kwargs, shape, tasks = MODEL_CASES[case]
    torch.manual_seed(0)
    model = build(case.split("-")[0], **kwargs).double()
    x = torch.rand(6, *shape, dtype=torch.float64)
    labels = torch.arange(6) % 5
    if model.scheme == "lsq":
        calibrate_activation_steps(model, x, (2, 2))
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def logits(p, task):
        return functional_call(model, (p, buffers), (x, task))

    def loss(p, task):
        out = logits(p, task)
        return out.pow(2).mean() if case.startswith("proto") else torch.nn.functional.cross_entropy(out, labels)

    codes = task_tensor(tasks)
    batched_out = vmap(logits, in_dims=(None, 0))(params, codes)
    batched_grads = vmap(grad(loss), in_dims=(None, 0))(params, codes)
    for i, task in enumerate(tasks):
        torch.testing.assert_close(batched_out[i], logits(params, task), rtol=1e-9, atol=1e-10)
        looped = grad(loss)(params, task)
        # gradients that are zero in exact arithmetic (a bias right before a BatchNorm) hold only rounding
        # noise, so the tolerance is relative to the largest gradient of the whole model
        scale = max(g.abs().max().item() for g in looped.values())
        for name, g in looped.items():
            torch.testing.assert_close(
                batched_grads[name][i], g, rtol=1e-6, atol=1e-9 * scale, msg=f"{case} {task} {name}"
            )


@pytest.mark.parametrize("case", ["preact_resnet20", "maml_convnet"])
def test_python_task_and_tensor_task_agree_exactly_in_float32(case):
    kwargs, shape, tasks = MODEL_CASES[case]
    model = build(case, **kwargs)
    x = torch.rand(4, *shape)
    if model.scheme == "lsq":
        calibrate_activation_steps(model, x, (2, 2))
    for task in tasks:
        assert torch.equal(model(x, task), model(x, task_tensor(task))), str(task)
