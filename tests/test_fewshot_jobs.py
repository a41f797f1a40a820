"""Tables 4/5 jobs: each of the six methods through the CLI on the glyph stand-ins, the fixed test-task
set shared by every method and bitwidth of a setup, resume after a kill, and what each fidelity switch
changes."""

from __future__ import annotations

import copy
import json

import jsonschema
import numpy as np
import pytest
import torch
from mebqat_cli import killed_and_resumed, trained

from mebqat.core.config import resolve_job
from mebqat.core.schemas import validator
from mebqat.data import Episode, stack_episodes
from mebqat.engine.data import FewShotData
from mebqat.engine.loop import build_model, train
from mebqat.kernels import model_state
from mebqat.methods import create_method
from mebqat.models import parameter_counts, parameter_kinds
from mebqat.quant import BitwidthTask as T

METRICS_SCHEMA = validator("metrics").schema


def copy_module(module):
    return copy.deepcopy(module)


# the three methods of each table, on one setup each; the dedicated (+QAT) networks are meta-tested at every
# bitwidth here (smoke and mini otherwise test them at their own only), which exercises the test-time step boot
EVERY_BITWIDTH = ["--set", "evaluate.own_task_only=false"]
JOBS = {
    "maml_omniglot_20w1s": [
        ("fomaml", []),
        ("fomaml_qat", ["--train-task", "(3,3)", *EVERY_BITWIDTH]),
        ("mebqat_maml", []),
    ],
    "pn_miniimagenet_5w1s": [("pn", []), ("pn_qat", ["--train-task", "(4,FP)", *EVERY_BITWIDTH]), ("mebqat_pn", [])],
}


@pytest.fixture(scope="module")
def finished_runs(data_root, tmp_path_factory):
    runs = {}
    for setup, jobs in JOBS.items():
        for method, extra in jobs:
            runs[(setup, method)] = trained(
                data_root, tmp_path_factory.mktemp(f"{setup}-{method}"), setup, method, *extra
            )
    return runs


@pytest.mark.parametrize("setup, method", [(s, m) for s, jobs in JOBS.items() for m, _ in jobs])
def test_each_method_produces_a_valid_metrics_file(finished_runs, setup, method):
    out = finished_runs[(setup, method)]
    metrics = json.loads((out / "metrics.json").read_text())
    jsonschema.validate(metrics, METRICS_SCHEMA)
    identity = metrics["identity"]
    assert (identity["setup"], identity["method"], identity["scale"]) == (setup, method, "smoke")
    assert identity["is_standin"] and identity["stands_for"] in ("Omniglot", "MiniImageNet")
    assert [(r["bits_w"], r["bits_a"]) for r in metrics["results"]] == [(b, b) for b in (2, 3, 4, 5, 6, 7, 8, 16)] + [
        ("FP", "FP")
    ]
    assert all(r["n"] == 6 for r in metrics["results"])  # 6 test tasks at smoke scale
    per_episode = np.load(out / "episode_accuracies.npz")
    assert per_episode["accuracies"].shape == (9, 6)
    means = per_episode["accuracies"].mean(axis=1) * 100
    np.testing.assert_allclose(means, [r["accuracy"] for r in metrics["results"]], rtol=1e-6)
    costs = metrics["costs"]
    if method in ("fomaml", "fomaml_qat", "mebqat_maml"):  # meta-batch 2 × (2 inner steps + 1 query pass)
        assert costs["backward_passes_per_update"] == 2 * 3
    else:  # 4 tasks share the MEBQAT-PN episode; one for PN / PN+QAT
        assert costs["backward_passes_per_update"] == (4 if method == "mebqat_pn" else 1)


@pytest.mark.parametrize("setup", JOBS)
def test_every_method_and_bitwidth_of_a_setup_uses_the_same_test_tasks(finished_runs, setup):
    fingerprints = set()
    for method, _ in JOBS[setup]:
        out = finished_runs[(setup, method)]
        fingerprints.add(json.loads((out / "metrics.json").read_text())["test_tasks"]["fingerprint"])
        fingerprints.add(str(np.load(out / "episode_accuracies.npz")["fingerprint"]))
    assert len(fingerprints) == 1


@pytest.mark.slow
def test_a_killed_fewshot_job_resumes_to_the_same_metrics(data_root, tmp_path):
    extra = ["--set", "train.epochs=4", "--set", "train.steps_per_epoch=3"]
    straight, resumed = killed_and_resumed(
        data_root, tmp_path, "pn_miniimagenet_5w1s", "mebqat_pn", *extra, timeout=600
    )
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (straight, resumed))
    assert a["results"] == b["results"] and a["selection"] == b["selection"]
    np.testing.assert_array_equal(
        np.load(straight / "episode_accuracies.npz")["accuracies"],
        np.load(resumed / "episode_accuracies.npz")["accuracies"],
    )


# ---------------------------------------------------------------- fidelity switches


def configured(setup: str, method: str, fidelity: str = "official", **switches) -> dict:
    spec = {"setup": setup, "method": method, "scale": "smoke", "fidelity": fidelity, "fidelity_switches": switches}
    if method.endswith("_qat"):
        spec["train_task"] = "(3,3)"
    return resolve_job(spec)


def test_official_and_corrected_presets_set_every_switch():
    official = configured("maml_omniglot_20w1s", "mebqat_maml")["fidelity_switches"]
    corrected = configured("maml_omniglot_20w1s", "mebqat_maml", "corrected")["fidelity_switches"]
    assert (
        set(official)
        == set(corrected)
        == {
            "shared_lsq_steps",
            "frozen_activation_steps",
            "frozen_steps_in_inner_loops",
            "lsq_levels_2b",
            "fp_baseline_random_steps",
        }
    )
    assert all(official.values()) and not any(corrected.values())
    assert "frozen_steps_in_inner_loops" not in configured("pn_omniglot_20w1s", "mebqat_pn")["fidelity_switches"]


def built(config: dict):
    return create_method(config, "cpu").build_model(None)


def test_an_image_size_the_model_does_not_take_is_refused_with_the_fix():
    config = configured("maml_miniimagenet_5w1s", "fomaml")
    config["data"]["image_size"] = 42
    with pytest.raises(
        ValueError,
        match=r"data.image_size is 42 but model.options.input_shape is \[3, 84, 84\]: "
        r"set model.options.input_shape to \[3, 42, 42\]",
    ):
        built(config)
    config["model"]["options"]["input_shape"] = [3, 42, 42]
    assert built(config).input_shape == (3, 42, 42)


def test_shared_lsq_steps_and_levels_switches_change_the_model():
    official = built(configured("maml_omniglot_20w1s", "mebqat_maml"))
    per_bitwidth = built(configured("maml_omniglot_20w1s", "mebqat_maml", shared_lsq_steps=False))
    assert parameter_counts(official)["quantizer_params"] == 6
    assert parameter_counts(per_bitwidth)["quantizer_params"] == 6 * 8
    exact = built(configured("maml_omniglot_20w1s", "mebqat_maml", lsq_levels_2b=False))
    assert official.get_submodule("features.4.quantizer").levels == "official"
    assert exact.get_submodule("features.4.quantizer").levels == "exact"


def test_frozen_steps_in_inner_loops_switch_changes_the_adapted_parameters():
    def adapted(**switches):
        return create_method(configured("maml_omniglot_20w1s", "mebqat_maml", **switches), "cpu").adapt_kinds()

    assert adapted() == {"weight", "bias"}
    assert adapted(frozen_steps_in_inner_loops=False) == {"weight", "bias", "weight_step", "activation_step"}


@pytest.mark.parametrize("frozen", [True, False])
def test_activation_steps_move_only_when_learning_is_on(frozen, data_root, tmp_path):
    """Train MEBQAT-PN for a few steps: with the official quirk the activation steps keep their calibrated
    values exactly; without it they move. Weight steps move in both cases."""
    config = configured("pn_omniglot_20w1s", "mebqat_pn", frozen_activation_steps=frozen)
    config["data"]["root"] = str(data_root)
    cpu = torch.device("cpu")
    method = create_method(config, cpu)
    torch.manual_seed(config["job"]["seed"])
    data = FewShotData(config, cpu, "train")
    before, _ = build_model(config, method, data, cpu)  # the job's layout: a calibration sums in memory order
    method.initialise(before, data, cpu)
    train(config, tmp_path / "run", device="cpu")
    after = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)["model"]
    kinds = parameter_kinds(before)
    initial = dict(before.named_parameters())
    activation = [n for n, k in kinds.items() if k == "activation_step"]
    weight = [n for n, k in kinds.items() if k == "weight_step"]
    assert activation and weight
    moved = [not torch.equal(after[n], initial[n].detach()) for n in activation]
    assert (not any(moved)) if frozen else all(moved)
    assert all(not torch.equal(after[n], initial[n].detach()) for n in weight)


def _base_network(setup: str, method_name: str, data_root) -> tuple:
    """(method, data, the freshly built base network) as a job builds them."""
    config = configured(setup, method_name)
    config["data"]["root"] = str(data_root)
    cpu = torch.device("cpu")
    method = create_method(config, cpu)
    torch.manual_seed(config["job"]["seed"])
    data = FewShotData(config, cpu, "train")
    model, _ = build_model(config, method, data, cpu)
    return method, data, model


def _activation_steps(model) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().clone() for n, p in model.named_parameters() if parameter_kinds(model)[n] == "activation_step"
    }


@pytest.mark.parametrize("method_name", ["pn_qat", "mebqat_pn", "mebqat_maml"])
def test_the_temp_forward_boots_activation_steps_on_one_support_set(method_name, data_root):
    """official §2.3: the base network's activation steps boot from one training support set, in every
    family (PN's query images are not part of it)."""
    from mebqat.methods.fewshot import module_mode
    from mebqat.quant import calibrate_activation_steps

    setup = "maml_omniglot_20w1s" if method_name == "mebqat_maml" else "pn_omniglot_20w1s"
    method, data, model = _base_network(setup, method_name, data_root)
    episode, base = data.calibration_episode(), method.base_task()
    references = {}
    for name, x in (("support", episode.support_x), ("support+query", torch.cat([episode.support_x, episode.query_x]))):
        copy = copy_module(model)
        with torch.no_grad(), module_mode(copy, True):
            calibrate_activation_steps(copy, x, base)
        references[name] = _activation_steps(copy)
    method.initialise(model, data, torch.device("cpu"))
    booted = _activation_steps(model)
    assert booted and all(torch.equal(booted[n], references["support"][n]) for n in booted)
    assert not all(torch.equal(booted[n], references["support+query"][n]) for n in booted)


@pytest.mark.parametrize("method_name", ["pn", "pn_qat"])
def test_the_temp_forward_advances_bn_running_statistics_of_pn(method_name, data_root):
    """official §2.3/§4.6: PN and PN+QAT track BN running statistics, and the temp forward runs in train
    mode, so it moves them one momentum step before the first update, plain PN (nothing to boot) too."""
    from mebqat.methods.fewshot import module_mode

    method, data, model = _base_network("pn_omniglot_20w1s", method_name, data_root)
    from mebqat.quant import calibrate_activation_steps

    expected, base = copy_module(model), method.base_task()
    support = data.calibration_episode().support_x
    with torch.no_grad(), module_mode(expected, True):  # one train-mode forward (booting s_a where quantized)
        if base.a is None:
            expected(support, base)
        else:
            calibrate_activation_steps(expected, support, base)
    norms = [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(int(model.get_submodule(n).num_batches_tracked) == 0 for n in norms)
    method.initialise(model, data, torch.device("cpu"))
    for name in norms:
        mine, theirs = model.get_submodule(name), expected.get_submodule(name)
        assert int(mine.num_batches_tracked) == 1, name
        assert torch.equal(mine.running_mean, theirs.running_mean) and torch.equal(
            mine.running_var, theirs.running_var
        ), name
        assert mine.running_mean.abs().sum() > 0, name


def test_fp_baseline_weight_steps_come_from_a_random_init_or_the_trained_weights():
    from mebqat.kernels.boot import weight_step_references

    model = built(configured("maml_omniglot_20w1s", "fomaml"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() > 1:
                p.mul_(5.0)  # "trained" weights, far from the init scale
    random = weight_step_references(model, random_init=True, seed=0)
    trained = weight_step_references(model, random_init=False, seed=0)
    for name in random:
        layer = model.get_submodule(name)
        assert trained[name].item() == pytest.approx(layer.weight.abs().mean().item())
        assert random[name].item() < trained[name].item() / 3  # the init scale, not the trained one
    assert weight_step_references(model, True, 0)[name] == random[name]  # seeded


def _fp_baseline(setup: str, method: str, data_root):
    config = configured(setup, method)
    config["data"]["root"] = str(data_root)
    config["data"]["test_tasks"] = 3
    m = create_method(config, "cpu")
    model = m.build_model(None).double()
    with torch.no_grad():
        torch.manual_seed(0)
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    real = FewShotData(config, torch.device("cpu"), "test").test_tasks
    generator = torch.Generator().manual_seed(0)
    noise = [
        real[i]._replace(
            support_x=torch.rand(real[i].support_x.shape, generator=generator, dtype=torch.float64),
            query_x=torch.rand(real[i].query_x.shape, generator=generator, dtype=torch.float64),
        )
        for i in range(3)
    ]

    class NoiseEpisodes:  # the fixed tasks' labels and shapes, noise images (glyphs' flat backgrounds tie)
        def __len__(self):
            return len(noise)

        def batch(self, indices):
            return stack_episodes([noise[i] for i in indices])

    return config, m, model, NoiseEpisodes()


def test_steps_booted_per_episode_are_the_same_inside_vmap(data_root):
    from torch.func import vmap

    from mebqat.quant import task_tensor

    config, method, model, episodes = _fp_baseline("maml_omniglot_20w1s", "fomaml", data_root)
    params, _ = model_state(model)
    prepare = method.untrained_steps(model, params)
    batch = episodes.batch([0, 1, 2])
    booted = set()
    for task in (T(2, 2), T(5, 8), T(4, None)):
        batched = vmap(lambda e, task=task: prepare(params, e, task_tensor(task)))(batch)
        for i in range(3):
            one = prepare(params, Episode(*(f[i] for f in batch)), task)
            assert one.keys() <= batched.keys()
            for name, value in one.items():
                torch.testing.assert_close(batched[name][i], value, rtol=1e-12, atol=0)
            booted |= set(one)
    kinds = parameter_kinds(model)
    assert {kinds[name] for name in booted} == {"weight_step", "activation_step"}


@pytest.mark.parametrize(
    "setup, method, tasks",
    [
        # MAML fine-tunes through max-pool: quantized activations would tie exactly there
        # (see fewshot_synthetic.tie_safe)
        ("maml_omniglot_20w1s", "fomaml", [T(2, None), T(8, None), T(None, None)]),
        ("pn_omniglot_20w1s", "pn", [T(4, 4), T(8, 8), T(None, None)]),
    ],
)
def test_fp_baseline_meta_test_engines_agree(setup, method, tasks, data_root):
    """The FP-baseline meta-test boots steps per (episode, bitwidth) inside the vmapped run and equals the
    sequential reference (float64)."""
    config, m, model, episodes = _fp_baseline(setup, method, data_root)

    def meta_test(engine: str) -> torch.Tensor:
        runner = create_method(config, engine=engine)
        params, buffers = model_state(model)
        return runner.meta_test(
            model, params, buffers, [episodes.batch([0, 1, 2])], tasks, runner.untrained_steps(model, params)
        )

    batched, sequential = meta_test("batched"), meta_test("sequential")
    torch.testing.assert_close(batched, sequential)
    assert batched.shape == (3, 3)
