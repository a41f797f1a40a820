"""What every Table 4/5 (few-shot) method shares, on top of the pure functions of :mod:`mebqat.kernels`:
the LSQ network built from the fidelity switches, its activation steps calibrated on one training
episode, the aggregation of per-task meta-gradients into ``.grad``, validation on the fixed
meta-validation tasks and the meta-test on the fixed test tasks. The algorithm itself comes from a
family (:class:`~mebqat.methods.maml.MAMLFamily`, :class:`~mebqat.methods.protonet.ProtoFamily`) and the
bitwidth tasks from a task policy (:class:`FixedTask`: one task, FOMAML/PN(+QAT); :class:`RandomTasks`:
MEBQAT's draws from the 73 LSQ candidates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.func import vmap

from ..core.counters import PassCounter
from ..core.registry import MODELS, MethodInfo
from ..core.rundir_layout import EPISODE_OUTCOMES
from ..core.tasks import FP_TASK, BitwidthTask, TaskSampler, bitwidth_candidates
from ..data.episode import Episode
from ..kernels import aggregate_meta_gradients, mean_ci95, model_state, task_usage
from ..kernels.aggregate import Divisor
from ..kernels.boot import boot_activation_steps, boot_weight_steps, weight_step_references
from ..kernels.functional import ParamDict, module_mode
from ..models import build, parameter_kinds
from ..quant import calibrate_activation_steps, task_tensor
from .base import DivergenceError, Evaluation, Method, random_validation_tasks
from .contract import Engine, FewShotData, UpdateStats

MEBQAT_BASE_TASK = BitwidthTask(2, 2)
"""The authors build every MEBQAT base network at (2,2): weight steps boot at 2 bits, and activation
steps are calibrated once at 2 bits (official §4.3 "Base network", §2.3)."""

StepResult = tuple[ParamDict, torch.Tensor, torch.Tensor, int]
"""(per-task gradients [B, ...], per-task loss [B], per-task accuracy [B], passes)."""


class FewShotMethod(Method[FewShotData, Episode]):
    problem: ClassVar[str] = "fewshot"
    running_stats: ClassVar[bool] = False
    """BatchNorm tracks running statistics (inductive at meta-test: PN, PN+QAT)."""
    divisor: ClassVar[Divisor] = "batch"
    """How per-task gradients are divided (:func:`mebqat.kernels.aggregate_meta_gradients`)."""
    episode_chunk: int
    """Meta-test episodes per vmapped chunk of the batched engine (``evaluate.episode_chunk``)."""

    def __init__(self, config: Mapping[str, Any], info: MethodInfo, engine: Engine) -> None:
        super().__init__(config, info, engine)
        self.episode_chunk = config["evaluate"]["episode_chunk"]

    # ---------------------------------------------------------------- the task policy (FixedTask / RandomTasks)

    def base_task(self) -> BitwidthTask:
        """The task the base network is built at: its weight steps boot there and its activation steps are
        calibrated there."""
        raise NotImplementedError

    def step_tasks(self, count: int) -> list[BitwidthTask]:
        raise NotImplementedError

    def validation_tasks(self, count: int, epoch: int) -> list[BitwidthTask]:
        trained = self.trained_tasks()
        return [trained[i % len(trained)] for i in range(count)]

    @property
    def is_fp_baseline(self) -> bool:
        """Trained at full precision only (plain FOMAML / PN): quantized only at meta-test."""
        return self.trained_tasks() == [FP_TASK]

    # ---------------------------------------------------------------- the algorithm (MAML / PN families)

    def tasks_per_step(self) -> int:
        raise NotImplementedError

    def test_boot_input(self, episode: Episode) -> torch.Tensor:
        """The batch a test network that never trained activation steps boots them from, per meta-test run
        (official §5.2–§5.3: MAML the first fine-tuning support batch; PN the episode's support + query)."""
        raise NotImplementedError

    def meta_step(
        self, model: nn.Module, params: ParamDict, buffers: ParamDict, episodes: Episode, tasks: list[BitwidthTask]
    ) -> StepResult:
        raise NotImplementedError

    def episode_accuracy(
        self, model: nn.Module, params: ParamDict, buffers: ParamDict, episode: Episode, task: Any, ways: int
    ) -> torch.Tensor:
        """Validation: the query accuracy of one episode at one task (vmap-able)."""
        raise NotImplementedError

    def validation_mode(self) -> bool:
        """The module mode validation runs in (train for MAML's transductive fine-tuning, eval for PN)."""
        raise NotImplementedError

    def meta_test(
        self,
        model: nn.Module,
        params: ParamDict,
        buffers: ParamDict,
        batches: Sequence[Episode],
        tasks: list[BitwidthTask],
        prepare: Callable | None,
    ) -> torch.Tensor:
        raise NotImplementedError

    # ---------------------------------------------------------------- model

    def kinds(self, model: nn.Module) -> dict[str, str]:
        """:func:`mebqat.models.parameter_kinds` of ``model``, computed once."""
        cached = getattr(self, "_kinds", None)
        if cached is None or cached[0] is not model:
            self._kinds = cached = (model, parameter_kinds(model))
        return cached[1]

    def build_model(self, data: FewShotData) -> nn.Module:
        model_cfg = self.config["model"]
        base = self.base_task()
        options: dict[str, Any] = {
            **model_cfg["options"],
            "scheme": model_cfg["scheme"],
            "track_running_stats": self.running_stats,
            "weight_options": {
                "per_bitwidth": not self.fidelity.shared_lsq_steps,
                "init_bits": base.w if base.w is not None else 2,
            },
            "activation_options": {
                "per_bitwidth": not self.fidelity.shared_lsq_steps,
                "levels": "official" if self.fidelity.lsq_levels_2b else "exact",
            },
            **MODELS.get(model_cfg["name"]).data_arguments(self.config["data"]),
        }
        if options.get("dataset") is None:
            options.pop("dataset", None)
        size, shape = self.config["data"].get("image_size"), options.get("input_shape")
        if size is not None and shape is not None and list(shape[1:]) != [size, size]:
            raise ValueError(
                f"data.image_size is {size} but model.options.input_shape is {list(shape)}: set "
                f"model.options.input_shape to {[shape[0], size, size]} (or drop data.image_size)"
            )
        return build(model_cfg["name"], **options)

    def initialise(self, model: nn.Module, data: FewShotData, device: torch.device) -> None:
        """The authors' "temp" forward (official §2.3): one no-grad train-mode forward of the base network at
        its base task on one training support set (the support only, in every family). It boots the LSQ
        activation steps where the base task quantizes activations, and, with BN running statistics
        tracked (PN, PN+QAT), advances them by one momentum step, plain PN included."""
        base = self.base_task()
        if base.a is None and not self.running_stats:
            return  # the forward would change nothing
        x = data.calibration_episode().support_x.to(device, next(model.parameters()).dtype)
        with torch.no_grad(), module_mode(model, True):
            if base.a is None:
                model(x, base)
            else:
                calibrate_activation_steps(model, x, base)

    def trainable_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """Every parameter, except LSQ activation steps under the official quirk that never learns them."""
        kinds = parameter_kinds(model)
        frozen = self.fidelity.frozen_activation_steps
        return [p for name, p in model.named_parameters() if not (frozen and kinds[name] == "activation_step")]

    # ---------------------------------------------------------------- training

    def update(self, model: nn.Module, batch: Episode, counter: PassCounter) -> UpdateStats:
        """One meta-update: per-task first-order gradients, aggregated and clamped into ``.grad`` (and, for
        running statistics, the updated statistics into the model's buffers)."""
        tasks = self.step_tasks(self.tasks_per_step())
        params, buffers = model_state(model)
        with module_mode(model, True):
            grads, loss, accuracy, passes = self.meta_step(model, params, buffers, batch, tasks)
        counter.forward(passes)
        counter.backward(passes)
        usage = task_usage(model, tasks) if self.divisor == "steps_by_usage" else None
        aggregated = aggregate_meta_gradients(
            grads, self.kinds(model), usage, divisor=self.divisor, clamp=self.grad_clamp
        )
        for name, param in model.named_parameters():
            param.grad = aggregated[name].to(param.dtype)
        return {"loss": loss.mean(), "accuracy": accuracy.mean()}

    # ---------------------------------------------------------------- evaluation

    def validate(self, model: nn.Module, data: FewShotData, epoch: int) -> float:
        episodes = data.validation_episodes()
        tasks = self.validation_tasks(episodes.support_x.shape[0], epoch)
        params, buffers = model_state(model)
        ways = data.ways

        def one(episode: Episode, task: Any) -> torch.Tensor:
            return self.episode_accuracy(model, params, buffers, episode, task, ways)

        with module_mode(model, self.validation_mode()):
            if self.batched:
                codes = task_tensor(tasks, device=episodes.support_x.device)
                accuracies = vmap(one, chunk_size=data.episode_chunk)(episodes, codes)
            else:
                accuracies = torch.stack([one(Episode(*(f[i] for f in episodes)), t) for i, t in enumerate(tasks)])
        if not bool(torch.isfinite(accuracies).all()):
            raise DivergenceError(
                f"the model's outputs are not finite at validation (epoch {epoch}): it diverged; no metrics are written"
            )
        return mean_ci95(accuracies)[0]

    def untrained_steps(self, model: nn.Module, params: ParamDict) -> Callable | None:
        """Per-(episode, bitwidth) steps for the quantizers a model never trained (official §5.2–§5.3): an
        FP-trained baseline has neither weight nor activation steps, a QAT model trained with FP activations
        has no activation steps. Its test network boots activation steps from the run's first batch, and
        weight steps from a random init (official) or from the trained weights (corrected). None if the
        model trained every step it uses."""
        trained = self.trained_tasks()
        boot_activations = all(t.a is None for t in trained)
        boot_weights = all(t.w is None for t in trained)
        if not (boot_activations or boot_weights):
            return None
        references = (
            weight_step_references(model, self.fidelity.fp_baseline_random_steps, self.seed) if boot_weights else None
        )
        if boot_activations:  # placeholders, so the state checks pass: every run boots its own before use
            for name, kind in parameter_kinds(model).items():
                if kind == "activation_step":
                    params[name] = torch.ones_like(params[name])
        buffers = dict(model.named_buffers())

        def prepare(p: ParamDict, episode: Episode, task: Any) -> ParamDict:
            if boot_weights:
                assert references is not None  # computed above whenever weight steps are booted
                booted = boot_weight_steps(model, p, references, task)
            else:
                booted = {}
            if boot_activations:
                booted.update(
                    boot_activation_steps(model, {**p, **booted}, buffers, self.test_boot_input(episode), task)
                )
            return booted

        return prepare

    def evaluate(self, model: nn.Module, data: FewShotData, tasks: list[BitwidthTask]) -> Evaluation:
        """Meta-test on the fixed test tasks at every tested bitwidth (accuracy per task and episode)."""
        params, buffers = model_state(model)
        prepare = self.untrained_steps(model, params)
        accuracies = self.meta_test(model, params, buffers, data.test_batches(), tasks, prepare)
        broken = [str(t) for t, row in zip(tasks, accuracies, strict=True) if not bool(torch.isfinite(row).all())]
        if broken:
            raise DivergenceError(
                f"the model's outputs are not finite at {', '.join(broken)}: it diverged; no metrics are written"
            )
        rows = [mean_ci95(row) for row in accuracies]
        test = data.test_tasks
        return Evaluation(
            tasks=list(tasks),
            accuracy=[r[0] for r in rows],
            ci95=[r[1] for r in rows],
            n=[int(row.numel()) for row in accuracies],
            per_item=accuracies.cpu().numpy(),
            item_kind="episodes",
            extra={
                "test_tasks": {
                    "count": len(test),
                    "fingerprint": test.fingerprint,
                    "queries": test.queries,
                    "per_episode_file": EPISODE_OUTCOMES,
                }
            },
        )


# The task policies are few-shot methods that implement only the task part of the contract; a method combines
# one with an algorithm family, policy first (``class FOMAML(FixedTask, MAMLFamily)``), so that the policy's
# members come before the family's in the method resolution order.


class FixedTask(FewShotMethod):
    """Task policy: one fixed bitwidth task — (FP,FP) for plain FOMAML/PN, ``train_task`` for their QAT
    versions; every gradient divided by the number of tasks (official §4.4, §4.6)."""

    def base_task(self) -> BitwidthTask:
        return self.train_task if self.train_task is not None else FP_TASK

    def trained_tasks(self) -> list[BitwidthTask]:
        return [self.base_task()]

    def step_tasks(self, count: int) -> list[BitwidthTask]:
        return [self.base_task()] * count


class RandomTasks(FewShotMethod):
    """Task policy of MEBQAT-MAML / MEBQAT-PN: tasks drawn uniformly from the 73 LSQ candidates (no guaranteed
    tasks and no distillation in the few-shot code, official §8.7); per-parameter division of step
    gradients."""

    divisor: ClassVar[Divisor] = "steps_by_usage"

    def __init__(self, config: Mapping[str, Any], info: MethodInfo, engine: Engine) -> None:
        super().__init__(config, info, engine)
        self.sampler = TaskSampler(self.family, tasks_per_step=1, seed=self.seed)

    def base_task(self) -> BitwidthTask:
        return MEBQAT_BASE_TASK

    def trained_tasks(self) -> list[BitwidthTask]:
        return bitwidth_candidates(self.family)

    def step_tasks(self, count: int) -> list[BitwidthTask]:
        return [self.sampler.draw() for _ in range(count)]

    def validation_tasks(self, count: int, epoch: int) -> list[BitwidthTask]:
        return random_validation_tasks(self.family, count, self.seed, epoch, stream=5)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
