"""The five architectures: parameter counts of the specification, quantizer placement and roles,
first/last precision rules, BatchNorm modes, LSQ step initialisation, and bitwidth as an argument."""

from __future__ import annotations

import pytest
import torch

from mebqat.models import PrecisionRules, build, describe_model, parameter_counts, parameter_kinds, parameter_usage
from mebqat.quant import BitwidthTask, bitwidth_candidates, calibrate_activation_steps, task_tensor

NETS = {
    # name, kwargs, input shape, spec params, spec BN affine, weight quantizers, activation quantizers, quantizer params
    "mobilenetv2": ("mobilenetv2_cifar", {}, (3, 32, 32), 2_236_682, 34_112, 53, 35, 35),
    "preact_resnet20": ("preact_resnet20", {}, (3, 32, 32), 6_758_810, 7_840, 22, 18, 0),
    "cnn_svhn": ("cnn_svhn", {}, (3, 40, 40), 2_081_354, 1_024, 8, 7, 0),
    "maml_omniglot_20way": ("maml_convnet", {"dataset": "omniglot", "ways": 20}, (1, 28, 28), 112_980, 256, 5, 3, 6),
    "maml_mini_5way": ("maml_convnet", {"dataset": "miniimagenet", "ways": 5}, (3, 84, 84), 32_773, 128, 5, 3, 6),
    "proto_omniglot": ("proto_convnet", {"dataset": "omniglot"}, (1, 28, 28), 111_936, 512, 4, 3, 6),
    "proto_mini": ("proto_convnet", {"dataset": "miniimagenet"}, (3, 84, 84), 113_088, 512, 4, 3, 6),
}


@pytest.mark.parametrize("key", NETS)
def test_parameter_counts_match_the_specification(key):
    name, kwargs, _, params, bn, n_w, n_a, q_params = NETS[key]
    model = build(name, **kwargs)
    counts = parameter_counts(model)
    assert counts["params"] == params
    assert counts["bn_params"] == bn
    assert counts["quantizer_params"] == q_params
    info = describe_model(model)
    assert len(info["weight_quantizers"]) == n_w
    assert len(info["activation_quantizers"]) == n_a
    # one first weight, one last weight (the classifier; the ProtoNet embedding net has none)
    roles = [q["role"] for q in info["weight_quantizers"]]
    assert roles.count("first") == 1 and roles.count("last") == (0 if name == "proto_convnet" else 1)
    assert [q["role"] for q in info["activation_quantizers"]].count("last") <= 1


def test_mobilenet_quantized_parameter_total_includes_35_clipping_levels():
    model = build("mobilenetv2_cifar")
    assert sum(p.numel() for p in model.parameters()) == 2_236_717


def test_preact_resnet_last_activation_is_the_input_of_the_final_conv():
    info = describe_model(build("preact_resnet20"))
    last = [q for q in info["activation_quantizers"] if q["role"] == "last"]
    assert [q["name"] for q in last] == ["blocks.8.act2"]
    assert last[0]["always_fp"]  # Yu21 rules keep it FP ...
    apdnn = describe_model(build("preact_resnet20", rules={"last_activation": "same"}))
    assert not [q for q in apdnn["activation_quantizers"] if q["role"] == "last"][0]["always_fp"]  # ... ApDNN does not


def test_fewshot_nets_quantize_conv2_to_conv4_weights_and_inputs_only():
    info = describe_model(build("maml_convnet", dataset="omniglot", ways=5))
    quantized = [q["name"] for q in info["weight_quantizers"] if not q["always_fp"]]
    assert quantized == ["features.5.weight", "features.10.weight", "features.15.weight"]
    model = build("maml_convnet", dataset="omniglot", ways=5)
    inputs = {}
    for name in ("features.4", "features.9", "features.14"):
        model.get_submodule(name).register_forward_hook(
            lambda m, args, out, name=name: inputs.setdefault(name, args[0])
        )
    x = torch.rand(10, 1, 28, 28)
    calibrate_activation_steps(model, x, (2, 2))
    # each site quantizes the input of the next conv: the pooled, non-negative output of the previous block
    assert all((t >= 0).all() for t in inputs.values())
    assert model.get_submodule("features.5").in_channels == 64


@pytest.mark.parametrize(
    "task, expected",
    [
        ((16, 16), (8, 16, 8, 16, 16)),
        ((4, None), (8, 4, 8, None, None)),
        ((2, 7), (8, 2, 8, 7, 7)),
        ((None, None), (None, None, None, None, None)),
    ],
)
def test_sat_mobilenet_first_last_rules(task, expected):
    bits = build("mobilenetv2_cifar").rules.resolve(task)
    assert tuple(bits) == expected  # (w_first, w_inter, w_last, a_inter, a_last)


@pytest.mark.parametrize(
    "rules, family",
    [
        (PrecisionRules(8, 8, "same"), "sat"),
        (PrecisionRules("fp", "fp", "fp"), "dorefa"),
        (PrecisionRules("same", 4, "fp"), "lsq"),
    ],
)
def test_tensor_task_resolution_equals_python_resolution(rules, family):
    for task in bitwidth_candidates(family):
        python = rules.resolve(task)
        tensor = rules.resolve(task_tensor(task))
        assert [32 if b is None else b for b in python] == [int(t) for t in tensor], str(task)


def test_bad_rules_and_model_arguments_are_refused():
    with pytest.raises(ValueError, match="first_weight"):
        PrecisionRules(first_weight="half")
    with pytest.raises(ValueError, match="unknown precision rule keys"):
        build("cnn_svhn", rules={"first": "fp"})
    with pytest.raises(ValueError, match="unknown model 'resnet18'"):
        build("resnet18")
    with pytest.raises(ValueError, match="unexpected keyword argument 'width'"):
        build("cnn_svhn", width=3)
    with pytest.raises(ValueError, match="too small"):
        build("proto_convnet", input_shape=(1, 12, 12))
    with pytest.raises(ValueError, match="rescale_classifier is a SAT option"):
        build("mobilenetv2_cifar", scheme="dorefa", rescale_classifier=True)
    with pytest.raises(ValueError, match="invalid weight quantizer options"):
        build("cnn_svhn", weight_options={"rounding": "modified"})


@pytest.mark.parametrize("key", ["mobilenetv2", "preact_resnet20", "cnn_svhn", "maml_omniglot_20way", "proto_mini"])
def test_one_model_serves_every_bitwidth(key):
    """The bitwidth is an argument: one parameter set, different outputs per task, nothing rebuilt."""
    name, kwargs, shape, *_ = NETS[key]
    if name in ("maml_convnet", "proto_convnet"):  # shared LSQ steps would make (2,2) ≈ (8,8); see below
        kwargs = {**kwargs, "weight_options": {"per_bitwidth": True}, "activation_options": {"per_bitwidth": True}}
    model = build(name, **kwargs).eval()
    x = torch.rand(4, *shape)
    if model.scheme == "lsq":
        calibrate_activation_steps(model, x, (2, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    family = model.scheme
    outputs = {str(t): model(x, t) for t in [BitwidthTask(None, None), BitwidthTask(2, 2), BitwidthTask(8, 8)]}
    assert all(torch.isfinite(o).all() for o in outputs.values())
    assert not torch.allclose(outputs["(FP,FP)"], outputs["(2,2)"])
    assert not torch.allclose(outputs["(2,2)"], outputs["(8,8)"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert family in {"sat", "dorefa", "lsq"}


def test_shared_lsq_step_only_widens_the_range():
    """The authors' quirk (official-mebqat.md §8.1): with one step per layer for every bitwidth, a
    higher bitwidth does not refine the grid, so 8 and 16 bits give identical outputs when nothing
    reaches the 8-bit clipping range; with per-bitwidth steps they differ."""
    x = torch.rand(20, 1, 28, 28)
    shared = build("proto_convnet", dataset="omniglot").eval()
    calibrate_activation_steps(shared, x, (2, 2))
    assert torch.equal(shared(x, (8, 8)), shared(x, (16, 16)))
    per_bitwidth = build(
        "proto_convnet",
        dataset="omniglot",
        weight_options={"per_bitwidth": True},
        activation_options={"per_bitwidth": True},
    ).eval()
    calibrate_activation_steps(per_bitwidth, x, (2, 2))
    assert not torch.allclose(per_bitwidth(x, (8, 8)), per_bitwidth(x, (16, 16)))


def test_batchnorm_mode_is_a_constructor_switch():
    transductive = build("cnn_svhn")
    inductive = build("cnn_svhn", track_running_stats=True)
    assert parameter_counts(transductive)["bn_running_stats"] == 0
    assert parameter_counts(inductive)["bn_running_stats"] == 1024  # mean and variance of 512 channels
    x = torch.rand(8, 3, 40, 40)
    inductive.eval()
    transductive.eval()
    # in eval mode the inductive net uses its (initial) running statistics, so batch composition does not matter
    assert torch.allclose(inductive(x[:4], (4, 4)), inductive(x, (4, 4))[:4], atol=1e-5)
    assert not torch.allclose(transductive(x[:4], (4, 4)), transductive(x, (4, 4))[:4], atol=1e-5)


def test_fewshot_init_and_lsq_step_boot():
    model = build("maml_convnet", dataset="omniglot", ways=5)
    conv = model.get_submodule("features.5")
    assert conv.weight.abs().max() <= 0.04 and torch.all(conv.bias == 0)
    # MEBQAT's base is built at (2, 2): p_w = 1, so s_w = 2·mean|w_init|
    assert conv.weight_quantizer.step_for(2).item() == pytest.approx(2 * conv.weight.abs().mean().item(), rel=1e-6)
    dedicated = build("maml_convnet", dataset="omniglot", ways=5, weight_options={"init_bits": 6})
    conv6 = dedicated.get_submodule("features.5")
    assert conv6.weight_quantizer.step_for(6).item() == pytest.approx(
        2 * conv6.weight.abs().mean().item() / (2**5 - 1) ** 0.5, rel=1e-6
    )


def test_lsq_activation_steps_are_calibrated_explicitly():
    model = build("proto_convnet", dataset="omniglot")
    x = torch.rand(20, 1, 28, 28)
    assert torch.isnan(model(x, (4, 4))).all()  # forgetting calibration fails loudly
    site = model.get_submodule("features.4")
    seen = {}
    site.register_forward_hook(lambda m, args, out: seen.setdefault("x", args[0].detach()))
    assert calibrate_activation_steps(model, x, (2, 2)) == 3
    # official levels at 2 bits: p = 4, so s_a = 2·mean|x|/2 = mean|x|
    assert site.quantizer.step_for(2).item() == pytest.approx(seen["x"].abs().mean().item(), rel=1e-5)
    assert torch.isfinite(model(x, (4, 4))).all()
    assert calibrate_activation_steps(model, x, (2, 2)) == 0  # already calibrated: left alone
    with pytest.raises(ValueError, match="got FP"):
        calibrate_activation_steps(build("proto_convnet", dataset="omniglot"), x, (None, None))


def test_per_bitwidth_lsq_steps():
    model = build(
        "maml_convnet",
        dataset="omniglot",
        ways=5,
        weight_options={"per_bitwidth": True},
        activation_options={"per_bitwidth": True, "levels": "exact"},
    )
    assert parameter_counts(model)["quantizer_params"] == 6 * 8  # one step per quantized bitwidth {2..8, 16}
    conv = model.get_submodule("features.5")
    s2, s8 = conv.weight_quantizer.step_for(2).item(), conv.weight_quantizer.step_for(8).item()
    assert s8 < s2 / 10  # a finer grid at 8 bits, unlike the shared step
    with pytest.raises(ValueError, match="no per-bitwidth value for 9 bits"):
        conv.weight_quantizer.step_for(9)


def test_parameter_kinds():
    kinds = parameter_kinds(build("maml_convnet", dataset="omniglot", ways=5))
    assert kinds["features.0.weight"] == "weight" and kinds["features.0.bias"] == "bias"
    assert kinds["features.1.bias"] == "bn"  # β of the β-only BatchNorm
    assert kinds["features.5.weight_quantizer.step.values"] == "weight_step"
    assert kinds["features.4.quantizer.step.values"] == "activation_step"
    mobilenet = parameter_kinds(build("mobilenetv2_cifar"))
    assert sum(k == "clip_level" for k in mobilenet.values()) == 35
    assert sum(k == "bn" for k in mobilenet.values()) == 2 * 52  # γ and β of 52 BatchNorms


def test_parameter_usage_follows_the_task():
    model = build("mobilenetv2_cifar")
    fp = parameter_usage(model, (None, None))
    mixed = parameter_usage(model, (4, None))
    quantized = parameter_usage(model, (4, 4))
    alphas = [k for k in fp if k.endswith(".alpha.values")]
    assert len(alphas) == 35
    assert all(fp[k].item() == 0 and mixed[k].item() == 0 and quantized[k].item() == 1 for k in alphas)
    assert all(fp[k].all() for k in fp if not k.endswith(".alpha.values"))  # conv/BN/FC: used by every task
    few = build(
        "maml_convnet",
        dataset="omniglot",
        ways=5,
        weight_options={"per_bitwidth": True},
        activation_options={"per_bitwidth": True},
    )
    usage = parameter_usage(few, (4, None))
    assert usage["features.5.weight_quantizer.step.values"].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert usage["features.4.quantizer.step.values"].sum() == 0


def test_switchable_batchnorm_and_clipping_levels():
    """AdaBits/ApDNN: one BatchNorm and one α per trained bitwidth; an untrained bitwidth is refused."""
    from mebqat.models.layers import switchable_batchnorm_factory

    bits = (2, 3, 4)
    model = build(
        "mobilenetv2_cifar",
        width_mult=0.25,
        norm=switchable_batchnorm_factory(bits),
        activation_options={"per_bitwidth": True, "bit_choices": bits},
    )
    counts = parameter_counts(model)
    single = parameter_counts(build("mobilenetv2_cifar", width_mult=0.25))
    assert counts["quantizer_params"] == 3 * 35
    assert counts["bn_params"] == 3 * single["bn_params"]
    assert counts["params"] - counts["bn_params"] == single["params"] - single["bn_params"]
    x = torch.rand(8, 3, 32, 32)
    model.train()
    model(x, (3, 3))  # updates only the 3-bit running statistics
    bn = model.get_submodule("stem.1")
    assert (bn.running_mean[1] != 0).any() and (bn.running_mean[[0, 2]] == 0).all()
    model.eval()
    assert torch.isfinite(model(x, (2, 2))).all()
    with pytest.raises(ValueError, match="no BatchNorm for 5-bit tasks: it was trained at 2, 3, 4 bits only"):
        model(x, (5, 5))
    usage = parameter_usage(model, (4, 4))
    assert usage["stem.1.weight"][:, 0].tolist() == [0, 0, 1]
    assert usage["stem.3.quantizer.alpha.values"].tolist() == [0, 0, 1]
    # tensor tasks select the same slot (evaluation under vmap)
    assert torch.equal(model(x, task_tensor(BitwidthTask(3, 3))), model(x, (3, 3)))


@pytest.mark.parametrize("key", ["mobilenetv2", "cnn_svhn", "maml_omniglot_20way", "proto_mini"])
def test_channels_last_changes_the_layout_not_the_function(key):
    """train.memory_format: every convolution's output is NHWC (also after a one-channel input, where PyTorch
    would keep NCHW); at FP outputs and gradients equal the NCHW network's up to float64 rounding. Quantized,
    that rounding can move an activation across a rounding threshold, so there only the outputs are compared,
    to within a level's worth."""
    import copy

    from mebqat.models import QConv2d
    from mebqat.models.memory_format import resolve_memory_format, use_memory_format

    name, kwargs, shape, *_ = NETS[key]
    torch.manual_seed(0)
    nchw = build(name, **kwargs).double().train()
    x = torch.rand(6, *shape, dtype=torch.float64)
    if nchw.scheme == "lsq":
        calibrate_activation_steps(nchw, x, (4, 4))
    nhwc = use_memory_format(copy.deepcopy(nchw), "channels_last")
    layouts = []
    for conv in (m for m in nhwc.modules() if isinstance(m, QConv2d)):
        conv.register_forward_hook(
            lambda m, i, out: layouts.append(out.is_contiguous(memory_format=torch.channels_last))
        )
    for task in [BitwidthTask(None, None), BitwidthTask(8, 8)]:
        results = []
        for model in (nchw, nhwc):
            model.zero_grad(set_to_none=True)
            for dropout in (m for m in model.modules() if isinstance(m, torch.nn.Dropout)):
                dropout.eval()  # its mask is drawn in memory order: another layout, another (as valid) mask
            out = model(x, task)
            out.square().sum().backward()
            results.append([out.detach(), *(p.grad for p in model.parameters() if p.grad is not None)])
        assert len(results[0]) == len(results[1]) > 1
        if task.w is None:
            for a, b in zip(*results, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
        else:
            torch.testing.assert_close(results[0][0], results[1][0], rtol=0.02, atol=0.02 * results[0][0].abs().max())
    assert layouts and all(layouts)
    assert use_memory_format(nhwc, "contiguous") is nhwc and all(p.is_contiguous() for p in nhwc.parameters())
    assert resolve_memory_format("auto", torch.device("cpu"), "sequential") == "channels_last"
    assert resolve_memory_format("auto", torch.device("cpu"), "batched") == "contiguous"
    assert resolve_memory_format("contiguous", torch.device("cpu"), "sequential") == "contiguous"
    with pytest.raises(ValueError, match="memory_format"):
        resolve_memory_format("nhwc", torch.device("cpu"), "sequential")


@pytest.mark.parametrize("switchable", [False, True])
def test_mobilenet_head_scale_options(switchable):
    """head_gamma_init sets the head BatchNorm's γ (every slot of a switchable one) and nothing else;
    last_activation_options change the last activation quantizer only, on top of activation_options; the
    quantized logits start small, as the mini scale relies on (docs/models.md)."""
    from mebqat.models.layers import batchnorm_factory, switchable_batchnorm_factory

    bits = (2, 3, 4)
    norm = switchable_batchnorm_factory(bits) if switchable else batchnorm_factory(False)
    options = {"per_bitwidth": True, "bit_choices": bits} if switchable else {}
    common = dict(width_mult=0.25, norm=norm, activation_options={**options, "alpha_init": 2.0})
    torch.manual_seed(0)
    plain = build("mobilenetv2_cifar", **common)
    torch.manual_seed(0)
    scaled = build("mobilenetv2_cifar", head_gamma_init=0.03, last_activation_options={"alpha_init": 0.1}, **common)
    head_gamma = scaled.get_submodule("head.1").weight
    assert torch.equal(head_gamma, torch.full_like(plain.get_submodule("head.1").weight, 0.03))
    alphas = {name: p for name, p in scaled.named_parameters() if name.endswith("alpha.values")}
    assert torch.equal(alphas.pop("head.3.quantizer.alpha.values"), torch.full((3 if switchable else 1,), 0.1))
    assert len(alphas) == 34 and all((p == 2.0).all() for p in alphas.values())
    changed = {
        name
        for (name, a), b in zip(plain.named_parameters(), scaled.parameters(), strict=True)
        if not torch.equal(a, b)
    }
    assert changed == {"head.1.weight", "head.3.quantizer.alpha.values"}
    x = torch.rand(16, 3, 16, 16)
    plain.train(), scaled.train()
    assert scaled(x, (4, 4)).std() < 0.2 * plain(x, (4, 4)).std()
