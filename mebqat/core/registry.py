"""One registry per kind — quantizer families, models, methods, datasets — whose entries carry their
metadata, so that the CLI, the schemas, the tables and the cost model derive their lists from them.

An entry names its implementation as ``"package.module:attribute"`` (imported on first use, so that
reading the metadata never imports torch) or holds the object itself. The built-in entries are in
:mod:`mebqat.core.catalog`; more come from plugins: the modules named in ``$MEBQAT_PLUGINS``
(comma-separated module names or ``.py`` paths) and the ``mebqat.plugins`` entry points, each of which
calls the ``register_*`` functions below when imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from .bits import format_bits

PLUGINS_ENV = "MEBQAT_PLUGINS"
ENTRY_POINT_GROUP = "mebqat.plugins"

Problem = Literal["supervised", "fewshot"]
PROBLEMS: tuple[str, ...] = ("supervised", "fewshot")
STEP_KINDS: tuple[str, ...] = ("weight_step", "activation_step")
"""The LSQ step sizes (of weights, of activations)."""
QUANTIZER_PARAMETER_KINDS: tuple[str, ...] = (*STEP_KINDS, "clip_level")
"""The kinds quantizer families map their learned parameters onto (SAT's α is a clipping level)."""
PARAMETER_KINDS: tuple[str, ...] = ("weight", "bias", "bn", *QUANTIZER_PARAMETER_KINDS)
"""What a model parameter is (:func:`mebqat.models.parameter_kinds`)."""
COST_ROLES: tuple[str, ...] = ("dedicated", "adaptive", "mebqat")
"""Table 3: one model per bitwidth (N·M storage, 1 backprop) | switchable parts per bitwidth ((1+(N−1)r)·M,
N backprops) | MEBQAT (M, T backprops)."""


class RegistryError(ValueError):
    """An unknown name, a name registered twice, or an entry whose metadata does not hold together."""


def load_object(ref: Any) -> Any:
    """``"pkg.mod:attr"`` → the attribute (importing the module); anything else is returned as it is."""
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        target = getattr(target, part)
    return target


@dataclass(frozen=True)
class QuantizerInfo:
    name: str
    impl: Any
    """A :class:`mebqat.quant.registry.QuantScheme` (or ``"module:attribute"`` naming it)."""
    bit_choices: tuple[int | None, ...]
    """Per-tensor bitwidths b_w and b_a are drawn from (None = FP); the candidate tasks follow from them."""
    learned: Mapping[str, str] = field(default_factory=dict)
    """``"weight.<attr>"`` / ``"activation.<attr>"`` → parameter kind, for each learned parameter table of the
    family's weight/activation quantizer modules (e.g. LSQ ``"weight.step": "weight_step"``)."""
    description: str = ""

    def __post_init__(self) -> None:
        quantized = [b for b in self.bit_choices if b is not None]
        if not quantized or None not in self.bit_choices or len(set(self.bit_choices)) != len(self.bit_choices):
            raise RegistryError(
                f"quantizer family {self.name!r}: bit_choices must hold distinct bitwidths and None "
                f"(FP), got {self.bit_choices}"
            )
        for key, kind in self.learned.items():
            if key.split(".", 1)[0] not in ("weight", "activation") or "." not in key:
                raise RegistryError(
                    f"quantizer family {self.name!r}: learned key {key!r} must be "
                    f"'weight.<attribute>' or 'activation.<attribute>'"
                )
            if kind not in QUANTIZER_PARAMETER_KINDS:
                raise RegistryError(
                    f"quantizer family {self.name!r}: {key} has kind {kind!r}; kinds of quantizer "
                    f"parameters are {sorted(QUANTIZER_PARAMETER_KINDS)}"
                )

    @property
    def min_bits(self) -> int:
        return min(b for b in self.bit_choices if b is not None)

    def choices_text(self) -> str:
        return "{" + ", ".join(format_bits(b) for b in self.bit_choices) + "}"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    impl: Any
    """The builder ``(**options) -> nn.Module`` (or ``"module:attribute"``)."""
    default_scheme: str
    input_shape: tuple[int, int, int] | None = None
    """(C, H, W) when the architecture fixes it; None when the dataset decides (few-shot nets)."""
    from_data: tuple[str, ...] = ()
    """Builder arguments a job takes from its ``data`` section (e.g. the MAML classifier's ``ways``)."""
    description: str = ""

    def data_arguments(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {name: data[name] for name in self.from_data}


@dataclass(frozen=True)
class MethodInfo:
    name: str
    impl: Any
    """The :class:`mebqat.methods.base.Method` subclass (or ``"module:Class"``)."""
    title: str
    """The column name in the paper's tables."""
    tables: tuple[str, ...]
    """The tables whose setups this method runs on (``table2``: supervised; ``table4``/``table5``: few-shot)."""
    problem: Problem
    """Which data the engine feeds it: batches of images (``supervised``) or few-shot episodes (``fewshot``)."""
    per_bitwidth: bool = False
    """Trains one model per bitwidth task (a job needs ``train_task``); each job fills only its own row."""
    fp_row_from: str | None = None
    """For a per-bitwidth method: the plain method whose model fills the (FP,FP) row (FOMAML+QAT → FOMAML);
    then no dedicated FP job is trained."""
    cost_role: str | None = None
    """Its role in Table 3 (one of :data:`COST_ROLES`), or None when Table 3 does not cost it."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The method's own options (``method:`` in a job config) with their defaults."""
    engines: Mapping[str, str] = field(default_factory=lambda: {"cpu": "sequential", "cuda": "batched"})
    """The engine ``train.engine: auto`` picks per device type (from the benchmarks' measurements)."""
    description: str = ""

    def __post_init__(self) -> None:
        if self.problem not in PROBLEMS:
            raise RegistryError(f"method {self.name!r}: problem must be one of {PROBLEMS}, got {self.problem!r}")
        if self.cost_role is not None and self.cost_role not in COST_ROLES:
            raise RegistryError(
                f"method {self.name!r}: cost_role must be one of {COST_ROLES} or None, got {self.cost_role!r}"
            )
        if self.fp_row_from is not None and not self.per_bitwidth:
            raise RegistryError(f"method {self.name!r}: fp_row_from applies only to per-bitwidth methods")
        for device, engine in self.engines.items():
            if engine not in ("batched", "sequential"):
                raise RegistryError(f"method {self.name!r}: engine for {device} must be batched or sequential")

    def default_engine(self, device_type: str) -> str:
        return self.engines.get(device_type, self.engines.get("cpu", "sequential"))


def data_title(name: str, is_standin: bool, stands_for: str | None) -> str:
    """The name every output gives a dataset: a stand-in says what it stands for."""
    return f"{name} (stand-in for {stands_for})" if is_standin else name


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    impl: Any
    """The loader (``"module:function"``): supervised ``(split, root, *, normalization, augment, input_shape,
    download, verify)``, few-shot ``(split, root, *, download, verify, seed)``."""
    kind: Problem
    input_shape: tuple[int, int, int]
    num_classes: int
    """Supervised: the number of labels. Few-shot: classes over all splits (see ``split_classes``)."""
    is_standin: bool
    stands_for: str | None
    description: str
    how_to_obtain: str
    split_classes: Mapping[str, int] = field(default_factory=dict)
    build: Any = None
    """Stand-ins: ``(root, seed) -> summary`` building (or reusing) the cache (``"module:function"``)."""
    sizes: Mapping[str, int] = field(default_factory=dict)
    """Supervised: images per split (``trainval``, ``test``) of the full dataset (cost projections read it)."""

    @property
    def title(self) -> str:
        """The name as every output shows it: stand-ins say so."""
        return data_title(self.name, self.is_standin, self.stands_for)


class _Entry(Protocol):
    """What a registry holds: a named entry whose ``impl`` says where its implementation is."""

    @property
    def name(self) -> str: ...

    @property
    def impl(self) -> Any: ...


E = TypeVar("E", bound=_Entry)


_REVISION = [0]


def revision() -> int:
    """Grows with every registration: caches built from the registries (schemas) key on it."""
    return _REVISION[0]


class Registry(Generic[E]):
    """Entries of one kind by name; lookups load the catalog and the plugins first."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, E] = {}
        self._loaded: dict[str, Any] = {}

    def add(self, entry: E) -> E:
        name = entry.name
        if name in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        _REVISION[0] += 1
        return entry

    def remove(self, name: str) -> None:
        """Drop an entry (tests that register throw-away entries clean up with this)."""
        self._entries.pop(name, None)
        self._loaded.pop(name, None)
        _REVISION[0] += 1

    def get(self, name: str) -> E:
        ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}") from None

    def names(self, where: Callable[[E], bool] | None = None) -> list[str]:
        ensure_loaded()
        return sorted(n for n, e in self._entries.items() if where is None or where(e))

    def __iter__(self) -> Iterator[E]:
        ensure_loaded()
        return iter([self._entries[n] for n in sorted(self._entries)])

    def load(self, name: str) -> Any:
        """The entry's implementation, imported on first use."""
        if name not in self._loaded:
            self._loaded[name] = load_object(self.get(name).impl)
        return self._loaded[name]


QUANTIZERS: Registry[QuantizerInfo] = Registry("quantizer family")
MODELS: Registry[ModelInfo] = Registry("model")
METHODS: Registry[MethodInfo] = Registry("method")
DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register_quantizer(info: QuantizerInfo) -> QuantizerInfo:
    return QUANTIZERS.add(info)


def register_model(info: ModelInfo) -> ModelInfo:
    return MODELS.add(info)


def register_method(info: MethodInfo) -> MethodInfo:
    return METHODS.add(info)


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    return DATASETS.add(info)


_STATE = {"loaded": False, "loading": False}


def ensure_loaded() -> None:
    """Register the built-in catalog and every plugin, once per process."""
    if _STATE["loaded"] or _STATE["loading"]:
        return
    _STATE["loading"] = True
    try:
        importlib.import_module("mebqat.core.catalog")
        for name in _plugin_names():
            _import_plugin(name)
        _STATE["loaded"] = True
    finally:
        _STATE["loading"] = False


def _plugin_names() -> list[str]:
    names = [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
    from importlib.metadata import entry_points

    names += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return names


def _import_plugin(name: str) -> None:
    try:
        if name.endswith(".py"):
            path = Path(name).expanduser().resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            module_name = f"mebqat_plugin_{path.stem}"
            if module_name in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:  # never for a .py file
                raise ImportError(f"{path} cannot be loaded as a module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(name)
    except RegistryError:
        raise
    except Exception as err:
        raise RegistryError(
            f"plugin {name!r} (from ${PLUGINS_ENV} or the {ENTRY_POINT_GROUP!r} entry points) "
            f"could not be loaded: {type(err).__name__}: {err}"
        ) from None
