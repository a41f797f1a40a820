"""The one contract every method implements, whatever its table: the engine (:mod:`mebqat.engine.loop`)
builds the model through it, calls one update per step, asks it for a validation score per epoch and for
its evaluation at the tested bitwidths, and checkpoints its state. Data come from the engine as problem
data (the :class:`~mebqat.methods.contract.SupervisedData` / :class:`~mebqat.methods.contract.FewShotData`
protocols): batches of images for Table 2, episodes for Tables 4/5. A method is built once for one engine
(``batched`` or ``sequential``, :func:`create_method` resolves ``train.engine: auto`` for the device).

Adding a method is one module with a :class:`Method` subclass (usually of :class:`SupervisedMethod` or of
the few-shot families in :mod:`mebqat.methods.maml` / :mod:`mebqat.methods.protonet`) plus one entry in
:mod:`mebqat.core.catalog` (its metadata: title, tables, per-bitwidth or not, Table 3 role, options).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import torch
from torch import nn

from ..core.counters import PassCounter
from ..core.fidelity import Fidelity
from ..core.registry import METHODS, MethodInfo, RegistryError
from ..core.seeds import derived_seed
from ..core.tasks import FP_TASK, BitwidthTask, TaskSampler, parse_bits_list
from .contract import ENGINES, Engine, UpdateStats, resolve_engine


class DivergenceError(RuntimeError):
    """A NaN or infinite loss, parameter or output: the job stops and writes no metrics."""


@dataclass
class Evaluation:
    """A method's evaluation at the tested bitwidths: one summary row per task and the per-item outcome
    (per test image, or per test episode) that paired comparisons use."""

    tasks: list[BitwidthTask]
    accuracy: list[float]
    """Per task, in %."""
    ci95: list[float]
    """Per task, 95% interval half-width in % (NaN when undefined)."""
    n: list[int]
    per_item: np.ndarray
    """[len(tasks), items]: 0/1 correctness per test image, or accuracy per test episode."""
    item_kind: str
    """``images`` or ``episodes``."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Engine-independent facts for metrics.json (e.g. the test-task fingerprint)."""
    item_ids: np.ndarray | None = None
    """Which item each column is (test-image index), when the order is not the natural one."""
    batch_sizes: list[int] | None = None
    """Images: the test batches' sizes, in column order (the official accuracy is a mean over batches)."""


@dataclass(frozen=True)
class MethodOptions:
    """A method's own options, the ``method:`` section of its job configuration, as named and typed fields
    fixed when the method is built. The method's registry entry (:attr:`MethodInfo.options`) owns their
    names and defaults: a subclass declares one field per option of the entry, without a default, and a
    method class names it as its :attr:`Method.options_type`. This base has no fields: the options of a
    method whose entry has none."""

    @classmethod
    def check_entry(cls, info: MethodInfo) -> None:
        """Refuse a dataclass whose fields are not exactly the entry's option names."""
        names = {f.name for f in fields(cls)}
        if names != set(info.options):
            raise RegistryError(
                f"method {info.name!r}: its options class {cls.__name__} has the fields {sorted(names) or 'none'} "
                f"but its registry entry's options are {sorted(info.options) or 'none'}; they must be the same"
            )

    @classmethod
    def from_config(cls, info: MethodInfo, section: Mapping[str, Any]) -> Self:
        """The options of a job's ``method:`` section (an option it does not give takes the entry's default);
        a list becomes a tuple, so that the options cannot change after the method is built."""
        cls.check_entry(info)
        values = {**info.options, **section}
        return cls(**{name: _frozen(values[name]) for name in info.options})


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list | tuple) else value


DataT = TypeVar("DataT")
"""The problem data a method receives (:class:`~mebqat.methods.contract.SupervisedData` or
:class:`~mebqat.methods.contract.FewShotData`)."""
BatchT = TypeVar("BatchT")
"""The batch one update takes (:data:`~mebqat.methods.contract.SupervisedBatch` or a stacked ``Episode``)."""


class Method(Generic[DataT, BatchT]):
    """Base of every method, generic in the data it receives and the batch one update takes (the families
    fix both). Subclasses implement the abstract parts; the rest has working defaults."""

    info: MethodInfo
    """This method's registry entry (title, tables, per-bitwidth, cost role, options)."""
    problem: ClassVar[str]
    """``supervised`` or ``fewshot``: the kind of data its :meth:`update` takes."""
    options_type: ClassVar[type[MethodOptions]] = MethodOptions
    """The dataclass of its options (none by default); a method with options names its own and declares
    :attr:`options` with that type."""
    options: MethodOptions
    """Its ``method:`` options, from the job configuration and the registry entry's defaults."""

    def __init__(self, config: Mapping[str, Any], info: MethodInfo, engine: Engine) -> None:
        if engine not in ENGINES:
            raise ValueError(f"{info.name}: the engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.config, self.info = config, info
        self._engine: Engine = engine
        self.options = self.options_type.from_config(info, config["method"])
        self.fidelity = Fidelity.of(config)
        self.family: str = config["model"]["scheme"]
        self.seed: int = config["job"]["seed"]
        self.grad_clamp: float | None = config["train"]["grad_clamp"]
        train_task = config["job"].get("train_task")
        self.train_task = BitwidthTask.parse(train_task) if train_task is not None else None

    @property
    def engine(self) -> Engine:
        """The engine this method was built for (fixed for its lifetime)."""
        return self._engine

    @property
    def batched(self) -> bool:
        """Whether it runs the batched engine (vmapped tasks and episodes) rather than the sequential one."""
        return self._engine == "batched"

    # ---------------------------------------------------------------- model

    def build_model(self, data: DataT) -> nn.Module:
        """The network, freshly initialised, for this dataset."""
        raise NotImplementedError

    def initialise(self, model: nn.Module, data: DataT, device: torch.device) -> None:
        """Anything set from data before training (e.g. LSQ activation steps); default: nothing."""

    def trainable_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """What the optimizer steps (default: every parameter)."""
        return list(model.parameters())

    # ---------------------------------------------------------------- tasks

    def trained_tasks(self) -> list[BitwidthTask]:
        """The bitwidth tasks this method trains (metrics identity; Table 3's N)."""
        raise NotImplementedError

    def can_evaluate(self, task: BitwidthTask) -> bool:
        return True

    def evaluation_tasks(self, requested: list[BitwidthTask], strict: bool) -> list[BitwidthTask]:
        """The requested tasks this method can be evaluated at. With ``strict``, an impossible one is an
        error; otherwise it is skipped (its table cell stays empty)."""
        impossible = [t for t in requested if not self.can_evaluate(t)]
        if impossible and strict:
            raise ValueError(
                f"{self.info.name} cannot be evaluated at {', '.join(map(str, impossible))}: "
                f"it was trained at {', '.join(map(str, self.trained_tasks()))} only"
            )
        return [t for t in requested if t not in impossible]

    # ---------------------------------------------------------------- training

    def update(self, model: nn.Module, batch: BatchT, counter: PassCounter) -> UpdateStats:
        """One update's forward/backward passes (counted in ``counter``); leaves the aggregated, clamped
        gradient in each parameter's ``.grad`` and returns ``{"loss": ...}`` (few-shot: and ``accuracy``)."""
        raise NotImplementedError

    def clamp(self, model: nn.Module) -> None:
        clamp_gradients_(model.parameters(), self.grad_clamp)

    # ---------------------------------------------------------------- evaluation

    def validate(self, model: nn.Module, data: DataT, epoch: int) -> float:
        """The per-epoch selection score in % (higher is better)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, data: DataT, tasks: list[BitwidthTask]) -> Evaluation:
        raise NotImplementedError

    # ---------------------------------------------------------------- resumable state

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def create_method(
    config: Mapping[str, Any], device: torch.device | str | None = None, engine: str | None = None
) -> Method[Any, Any]:
    """The method object of a resolved job configuration, built for one engine: ``engine`` if given (a
    benchmark comparing engines), else the configuration's ``train.engine``. ``auto`` takes the method's
    default for the type of ``device`` (``MethodInfo.engines``), so it needs ``device``."""
    info = METHODS.get(config["job"]["method"])
    cls = METHODS.load(info.name)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"method {info.name!r}: its impl must be a subclass of mebqat.methods.base.Method, got {cls!r}")
    setting = engine if engine is not None else config["train"]["engine"]
    device_type = torch.device(device).type if device is not None else None
    return cls(config, info, resolve_engine(setting, info, device_type))


def clamp_gradients_(params: Iterable[nn.Parameter], limit: float | None) -> None:
    """Elementwise clamp of every gradient to [−limit, limit] (official §4: ±10 in every scheme)."""
    if limit is None:
        return
    for p in params:
        if p.grad is not None:
            p.grad.clamp_(-limit, limit)


def random_validation_tasks(family: str, count: int, seed: int, epoch: int, stream: int = 7) -> list[BitwidthTask]:
    """A random valid task per validation batch or episode, from a stream that depends only on (seed,
    epoch, stream)."""
    sampler = TaskSampler(family, tasks_per_step=1, seed=derived_seed(seed, epoch, stream))
    return [sampler.draw() for _ in range(count)]


__all__ = [
    "DivergenceError",
    "Evaluation",
    "FP_TASK",
    "Method",
    "MethodOptions",
    "clamp_gradients_",
    "create_method",
    "parse_bits_list",
    "random_validation_tasks",
]
