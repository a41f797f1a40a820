"""What the engine feeds a method: the problem data of a job, on the job's device.

* :class:`SupervisedData` (Table 2): the training, selection and test splits held as uint8 tensors on the
  device; each epoch's batches come from a shuffle seeded by (seed, purpose, epoch) and are augmented on
  the device, so a resumed job sees exactly the batches an uninterrupted one sees.
* :class:`FewShotData` (Tables 4/5): the training episode sampler (checkpointed with the job), the fixed
  meta-validation tasks and the fixed meta-test tasks shared by every method and bitwidth of a setup.

``open_data(config, problem, device, purpose)`` picks by the method's problem kind (``supervised`` or
``fewshot``); ``purpose`` is ``train`` (what training needs) or ``test`` (what evaluation needs).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from ..core.data_fingerprint import DataFiles
from ..core.seeds import derived_seed
from ..data.episode import Episode

if TYPE_CHECKING:
    from ..data.episodes import EpisodeSampler
    from ..data.fewshot import FewShotSplit
    from ..data.fixed_tasks import FixedTaskSet
    from ..data.supervised import SupervisedDataset

SHUFFLE_TRAIN, SHUFFLE_SELECT, SHUFFLE_TEST = 0, 1, 2  # the purposes of the supervised shuffles

T = TypeVar("T")


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _opened(value: T | None, what: str) -> T:
    """``value``, which the data hold only when opened for the purpose that needs it (``open_data``'s
    ``purpose``): asking for it otherwise is a bug of the caller."""
    if value is None:
        raise RuntimeError(f"these data were opened for another purpose: they hold no {what}")
    return value


class SupervisedData:
    def __init__(
        self, config: Mapping[str, Any], device: torch.device, purpose: str, splits: Mapping[str, Any] | None = None
    ) -> None:
        """``splits`` (``{split name: SupervisedDataset}``) replaces loading the dataset (benchmarks feed
        synthetic images of the real sizes through the same batches)."""
        from ..data import load_supervised

        data, fidelity = config["data"], config["fidelity_switches"]
        self.seed, self.device = config["job"]["seed"], device
        self.batch_size, self.eval_batch_size = data["batch_size"], data["eval_batch_size"]
        self.limit_eval_batches = data["limit_eval_batches"]
        self.steps_per_epoch = config["train"]["steps_per_epoch"]
        # the authors trained on all training data and selected on the test split; corrected: a held-out val
        self.train_split, self.select_split = (
            ("trainval", "test") if fidelity["select_on_test_split"] else ("train", "val")
        )

        def load(split: str):
            return load_supervised(
                data["name"],
                split,
                data["root"],
                normalization=data["normalization"],
                input_shape=tuple(data["input_shape"]) if data["input_shape"] else None,
                download=data["download"],
                verify=data.get("verify", True),
            ).to(device)

        wanted = (self.train_split, self.select_split) if purpose == "train" else ("test",)
        loaded = {split: splits[split].to(device) if splits is not None else load(split) for split in wanted}
        self.train: SupervisedDataset | None
        self.select: SupervisedDataset | None
        self.test: SupervisedDataset | None
        self.train, self.select, self.test = (loaded.get(s) for s in (self.train_split, self.select_split, "test"))
        self.info = next(iter(loaded.values())).info
        self.num_classes = self.info.num_classes

    # ---------------------------------------------------------------- batches

    def _positions(self, size: int, seed: int) -> torch.Tensor:
        return torch.randperm(size, generator=_generator(self.device, seed), device=self.device)

    def steps(self) -> int:
        """Updates per epoch: ``train.steps_per_epoch``, or one pass over the training split."""
        return self.steps_per_epoch or -(-len(_opened(self.train, "training split")) // self.batch_size)

    def training_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches, augmented on the device: passes over the training split, each in a seeded
        shuffle, cut into batches (the last one of a pass may be smaller), for :meth:`steps` steps."""
        train = _opened(self.train, "training split")
        seed = derived_seed(self.seed, SHUFFLE_TRAIN, epoch)
        augmentation = _generator(self.device, derived_seed(seed, 1))

        def positions() -> Iterator[torch.Tensor]:
            for number in itertools.count():
                order = self._positions(len(train), derived_seed(seed, 0, number))
                yield from order.split(self.batch_size)

        for _, batch in zip(range(self.steps()), positions(), strict=False):
            yield train.batch(batch, augmentation)

    def _eval_batches(self, split, seed: int) -> list[torch.Tensor]:
        order = self._positions(len(split), seed)
        batches = [order[i : i + self.eval_batch_size] for i in range(0, len(split), self.eval_batch_size)]
        return batches[: self.limit_eval_batches] if self.limit_eval_batches else batches

    def selection_batches(self, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The per-epoch selection split in a seeded order (transductive BatchNorm sees the same batches
        after a resume)."""
        select = _opened(self.select, "selection split")
        return [select.batch(p) for p in self._eval_batches(select, derived_seed(self.seed, SHUFFLE_SELECT, epoch))]

    def test_batches(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(input, labels, test-image indices) per test batch: the same shuffled batches for every bitwidth
        (paired; transductive BatchNorm sees equal batches)."""
        test = _opened(self.test, "test split")
        indices = torch.as_tensor(test.indices, device=self.device)
        return [(*test.batch(p), indices[p]) for p in self._eval_batches(test, derived_seed(self.seed, SHUFFLE_TEST))]

    def sources(self) -> list[Path]:
        """The files the opened splits were read from (the job's data fingerprint hashes them)."""
        return [path for split in (self.train, self.select, self.test) if split is not None for path in split.sources]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class FewShotData:
    def __init__(self, config: Mapping[str, Any], device: torch.device, purpose: str) -> None:
        from ..data import EpisodeSampler, fixed_test_tasks, load_fewshot

        data = self.data = config["data"]
        self.device, self.seed = device, config["job"]["seed"]
        self.meta_batch = config["train"]["meta_batch"]
        self.steps_per_epoch = config["train"]["steps_per_epoch"]
        self.episode_chunk = config["evaluate"]["episode_chunk"]

        def split(name: str):
            loaded = load_fewshot(
                data["name"], name, data["root"], download=data["download"], verify=data.get("verify", True)
            )
            return loaded.resized(data.get("image_size")).to(device)

        def fixed(name: str, count: int):
            return fixed_test_tasks(
                split(name), data["ways"], data["shots"], data["queries"], num_tasks=count, seed=data["test_seed"]
            )

        self.train_split: FewShotSplit | None = split("train") if purpose == "train" else None
        self.sampler: EpisodeSampler | None = (
            EpisodeSampler(
                self.train_split,
                data["train_ways"] or data["ways"],
                data["shots"],
                data["train_queries"] or data["queries"],
                seed=self.seed,
            )
            if self.train_split is not None
            else None
        )
        self.val_tasks: FixedTaskSet | None = fixed("val", data["val_tasks"]) if purpose == "train" else None
        self._test_tasks: FixedTaskSet | None = fixed("test", data["test_tasks"]) if purpose == "test" else None
        self.info = (self.train_split or self.test_tasks.split).info
        self.ways, self.shots = data["ways"], data["shots"]

    @property
    def test_tasks(self) -> FixedTaskSet:
        """The fixed meta-test tasks (data opened for ``test`` only)."""
        if self._test_tasks is None:
            raise RuntimeError("these few-shot data were opened for training: they hold no meta-test tasks")
        return self._test_tasks

    def steps(self) -> int:
        return self.steps_per_epoch

    def training_batches(self, epoch: int) -> Iterator[Episode]:
        """``meta_batch`` episodes per step, stacked ([B, ...]; PN's single episode is B = 1)."""
        for _ in range(self.steps()):
            yield _opened(self.sampler, "training episodes").sample_batch(self.meta_batch)

    def calibration_episode(self) -> Episode:
        """One training episode from a stream of its own (the authors' "temp" forward boots the LSQ activation
        steps from one training support set)."""
        from ..data import EpisodeSampler

        data = self.data
        sampler = EpisodeSampler(
            _opened(self.train_split, "training split"),
            data["train_ways"] or data["ways"],
            data["shots"],
            data["train_queries"] or data["queries"],
            seed=derived_seed(self.seed, 3),
        )
        return sampler.sample().to(self.device)

    def validation_episodes(self) -> Episode:
        """Every fixed meta-validation task, stacked."""
        val_tasks = _opened(self.val_tasks, "meta-validation tasks")
        return val_tasks.batch(range(len(val_tasks)))

    def test_batches(self) -> list[Episode]:
        """The fixed meta-test tasks in stacked chunks of ``evaluate.episode_chunk``."""
        tasks, chunk = self.test_tasks, self.episode_chunk
        return [tasks.batch(range(start, min(start + chunk, len(tasks)))) for start in range(0, len(tasks), chunk)]

    def sources(self) -> list[Path]:
        """The files the opened splits and task sets were read from (the job's data fingerprint hashes them)."""
        opened = (self.train_split, self.val_tasks, self._test_tasks)
        return [path for part in opened if part is not None for path in part.sources]

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()} if self.sampler is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])


ProblemData = SupervisedData | FewShotData
"""The problem data of a job (each implements the protocol of the same name in :mod:`mebqat.methods.contract`,
the part the methods read)."""

PROBLEM_DATA: dict[str, type[ProblemData]] = {"supervised": SupervisedData, "fewshot": FewShotData}

if TYPE_CHECKING:  # a type checker holds these classes to the protocols the methods are written against
    from ..methods import contract

    _supervised: type[contract.SupervisedData] = SupervisedData
    _fewshot: type[contract.FewShotData] = FewShotData


def open_data(config: Mapping[str, Any], problem: str, device: torch.device, purpose: str) -> ProblemData:
    """The problem data of a job for ``purpose`` ``train`` or ``test``."""
    return PROBLEM_DATA[problem](config, device, purpose)


def data_files(config: Mapping[str, Any], data: ProblemData) -> DataFiles:
    """The files ``data`` were read from, hashed (the job's data fingerprint), named under the job's data root."""
    from ..data.storage import resolve_root

    return DataFiles(resolve_root(config["data"]["root"]), data.sources())
