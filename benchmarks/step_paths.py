"""Each faster path of a Table 2 step against the path it replaced, measured in one run (old ÷ new).

    python benchmarks/step_paths.py [--device cpu|cuda] [--scale mini|paper|smoke] [--repeats 5]

* **input pipeline**: one training batch of CIFAR-10-sized images through torchvision's per-image PIL
  transforms (RandomCrop(32, padding 4), RandomHorizontalFlip, ToTensor, Normalize: the old path) against
  the batched uint8-tensor pipeline on the device (``mebqat.data.transforms.InputPipeline``);
* **usage masks and host synchronisation**: one MEBQAT step (sequential engine) with the parameter-usage
  masks rebuilt every step and a ``bool(...)`` read-back per parameter (the old ``set_averaged_gradients``)
  against the cached masks and no read-back;
* **memory format**: one MEBQAT step with the network and its input in ``channels_last`` against NCHW;
* **few-shot jobs** (Tables 4/5, ``--fewshot``): a sequential meta-update and (MAML) meta-test of a
  dedicated +QAT job and a MEBQAT job, with LSQ as straight-through expressions (some twenty autograd nodes
  per quantizer call, the old path) against LSQ's fused autograd node (``mebqat.quant.lsq``), and in NCHW
  against ``channels_last`` (``train.memory_format``).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from common import (
    Classes,
    add_device_arguments,
    dataset_info,
    describe_device,
    job_config,
    median,
    print_table,
    random_batch,
    random_episodes,
    random_images,
    ratio,
    seconds,
    setup_device,
    take_turns,
)
from fewshot_engines import _model as fewshot_model
from table2_engines import table2_setups

from mebqat.core.config import evaluation_tasks
from mebqat.core.counters import PassCounter
from mebqat.data import cifar10
from mebqat.kernels import model_state
from mebqat.methods import create_method, mebqat_supervised
from mebqat.models.memory_format import use_memory_format
from mebqat.models.params import parameter_usage
from mebqat.quant import lsq


def pil_pipeline(images: np.ndarray, stats) -> Callable[[], torch.Tensor]:
    """The old path: a PIL image per sample, torchvision's transforms one image at a time."""
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(*stats),
        ]
    )
    pictures = [Image.fromarray(image) for image in images]  # what a torchvision dataset holds per item
    return lambda: torch.stack([transform(picture) for picture in pictures])


def comparison(what: str, old: str, new: str, times: dict[str, float], old_key: str, new_key: str) -> list[str]:
    """A row of the table: what is timed, the old and the new path, their median times and old ÷ new."""
    a, b = times[old_key], times[new_key]
    return [what, old, new, seconds(a), seconds(b), ratio(a, b)]


def input_pipeline_row(batch: int, repeats: int, device: torch.device) -> list[str]:
    images = random_images(batch, (3, 32, 32), device)
    pipeline = cifar10.pipeline("dorefa")
    generator = torch.Generator(device=device).manual_seed(0)
    hwc = images.permute(0, 2, 3, 1).cpu().numpy()
    candidates = {
        "old": lambda: pil_pipeline(hwc, pipeline.stats)().to(device),
        "new": lambda: pipeline(images, augment=True, generator=generator),
    }
    times = {k: median(v) for k, v in take_turns(candidates, repeats, device).items()}
    what = f"input pipeline, {batch} CIFAR-10 images"
    return comparison(what, "PIL per image (torchvision)", "uint8 tensors, batched", times, "old", "new")


def _old_set_averaged_gradients(model: torch.nn.Module, summed: dict[str, torch.Tensor | None], tasks: list) -> None:
    counts: dict[str, torch.Tensor] = {}
    for task in tasks:
        for name, mask in parameter_usage(model, task).items():
            counts[name] = counts[name] + mask if name in counts else mask.clone()
    for name, param in model.named_parameters():
        total, count = summed.get(name), counts[name]
        if total is None or not bool((count > 0).any()):  # one device read-back per parameter
            param.grad = None
            continue
        param.grad = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))


@contextlib.contextmanager
def old_usage_path() -> Iterator[None]:
    """The MEBQAT method as it was: masks rebuilt per task and step, a read-back per parameter."""
    saved = mebqat_supervised.usage_masks, mebqat_supervised.set_averaged_gradients
    mebqat_supervised.usage_masks = parameter_usage
    mebqat_supervised.set_averaged_gradients = _old_set_averaged_gradients
    try:
        yield
    finally:
        mebqat_supervised.usage_masks, mebqat_supervised.set_averaged_gradients = saved


def _step(
    setup: str,
    scale: str,
    device: torch.device,
    channels_last: bool = False,
    wrapper: Callable[[], Any] = contextlib.nullcontext,
) -> Callable[[], None]:
    config = job_config(setup, "mebqat", scale, "sequential")
    info = dataset_info(config)
    shape = tuple(config["data"]["input_shape"] or info.input_shape)
    x, y = random_batch(config["data"]["batch_size"], shape, info.num_classes, device)
    method = create_method(config, engine="sequential")
    torch.manual_seed(0)
    model = method.build_model(Classes(info.num_classes)).to(device).train()
    use_memory_format(model, "channels_last" if channels_last else "contiguous")

    def step() -> None:
        with wrapper():
            model.zero_grad(set_to_none=True)
            method.update(model, (x, y), PassCounter())

    return step


def step_rows(setup: str, scale: str, repeats: int, device: torch.device) -> list[list[str]]:
    candidates = {
        "masks rebuilt": _step(setup, scale, device, wrapper=old_usage_path),
        "nchw": _step(setup, scale, device),
        "channels_last": _step(setup, scale, device, channels_last=True),
    }
    t = {k: median(v) for k, v in take_turns(candidates, repeats, device).items()}
    what = f"MEBQAT step, {setup}"
    return [
        comparison(
            what, "masks rebuilt + read-back per parameter", "cached masks, no read-back", t, "masks rebuilt", "nchw"
        ),
        comparison(what, "NCHW", "channels_last", t, "nchw", "channels_last"),
    ]


FEWSHOT_JOBS = [
    "table4:maml_omniglot_20w1s:fomaml_qat:(2,2)",
    "table4:maml_omniglot_20w1s:mebqat_maml",
    "table5:pn_miniimagenet_5w1s:pn_qat:(2,2)",
]


@contextlib.contextmanager
def expression_lsq() -> Iterator[None]:
    """LSQ as it was: the straight-through expressions for every bitwidth."""
    saved = lsq._fake_quant
    lsq._fake_quant = lsq._fake_quant_expression
    try:
        yield
    finally:
        lsq._fake_quant = saved


def _fewshot_runs(
    table: str,
    setup: str,
    method: str,
    train_task: str | None,
    scale: str,
    episodes: int,
    device: torch.device,
    memory_format: str,
) -> dict[str, Callable[[], None]]:
    """One sequential meta-update and (MAML) one meta-test of ``episodes`` episodes, in ``memory_format``."""
    config = job_config(setup, method, scale, "sequential", train_task)
    data, train = config["data"], config["train"]
    ways, queries = data["train_ways"] or data["ways"], data["train_queries"] or data["queries"]
    shape = tuple(dataset_info(config).input_shape)
    batch = random_episodes(train["meta_batch"], ways, data["shots"], queries, shape, device)
    runner, model = fewshot_model(config, device, "sequential")
    use_memory_format(model, memory_format)

    def update() -> None:
        model.zero_grad(set_to_none=True)
        runner.update(model, batch, PassCounter())

    runs = {"update": update}
    if table == "table4":
        test = random_episodes(episodes, data["ways"], data["shots"], data["queries"], shape, device, seed=1)
        tasks = evaluation_tasks(config, None)  # a dedicated job: its own task (evaluate.own_task_only)

        def metatest() -> None:
            params, buffers = model_state(model)
            runner.meta_test(model, params, buffers, [test], tasks, runner.untrained_steps(model, params))

        runs["meta-test"] = metatest
    return runs


def fewshot_rows(
    table: str,
    setup: str,
    method: str,
    train_task: str | None,
    scale: str,
    repeats: int,
    episodes: int,
    device: torch.device,
) -> list[list[str]]:
    """Per few-shot job kind: LSQ expressions ÷ the fused node (NCHW), NCHW ÷ channels_last (fused)."""
    nchw = _fewshot_runs(table, setup, method, train_task, scale, episodes, device, "contiguous")
    nhwc = _fewshot_runs(table, setup, method, train_task, scale, episodes, device, "channels_last")
    label = f"{method}{' ' + train_task if train_task else ''}, {setup}"
    out = []
    for kind, run in nchw.items():
        what = f"{kind} ({episodes} episodes × its bitwidths)" if kind == "meta-test" else kind
        pair = {"expressions": lambda run=run: _within(expression_lsq, run), "fused": run, "nhwc": nhwc[kind]}
        t = {k: median(v) for k, v in take_turns(pair, repeats, device).items()}
        out += [
            comparison(f"{what}, {label}", "LSQ as expressions", "LSQ fused node", t, "expressions", "fused"),
            comparison(f"{what}, {label}", "NCHW", "channels_last", t, "fused", "nhwc"),
        ]
    return out


def _within(context: Callable[[], Any], run: Callable[[], Any]) -> None:
    with context():
        run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_arguments(parser)
    parser.add_argument(
        "--scale",
        default="mini",
        choices=["paper", "mini", "smoke"],
        help="network widths and batch of this scale (default: mini, the default run's)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="images of the input-pipeline batch")
    parser.add_argument("--setups", nargs="+", default=None)
    parser.add_argument(
        "--fewshot",
        nargs="*",
        default=None,
        metavar="TABLE:SETUP:METHOD[:TASK]",
        help="also the few-shot rows (fused LSQ, channels_last) of these jobs; bare --fewshot: "
        f"{' '.join(FEWSHOT_JOBS)}",
    )
    parser.add_argument("--episodes", type=int, default=5, help="test episodes of the MAML meta-test rows")
    args = parser.parse_args()
    device = setup_device(args)
    print(f"{describe_device(device, args.threads)}; {args.scale}-scale steps, {args.repeats} timed repeats")
    rows = [input_pipeline_row(args.batch, args.repeats, device)]
    for setup in args.setups or table2_setups():
        rows += step_rows(setup, args.scale, args.repeats, device)
    if args.fewshot is not None:
        for item in args.fewshot or FEWSHOT_JOBS:
            table, setup, method, *task = item.split(":")
            rows += fewshot_rows(
                table, setup, method, task[0] if task else None, args.scale, args.repeats, args.episodes, device
            )
    print_table(["what", "old path", "new path", "old", "new", "old ÷ new"], rows)


if __name__ == "__main__":
    main()
