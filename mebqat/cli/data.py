"""Datasets: list them, build a stand-in (or check that a real dataset is in place), preview samples, write
full-size synthetic data in the official formats for the paper-scale rehearsal.

Examples:
  mebqat data list
  mebqat data build glyphs28                     # render the Omniglot stand-in into ./data/standins/
  mebqat data build cifar10 --root /data         # check /data/cifar-10-batches-py/ and print the split sizes
  mebqat data build omniglot --download          # let torchvision fetch it first
  mebqat data preview glyphs84 --out glyphs84.png --rows 6 --cols 8
  mebqat data synthesize --root /tmp/rehearsal-data --only cifar10,omniglot

The data root is --root, else $MEBQAT_DATA, else ./data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .jobspec import positive_int

NAME = "data"
HELP = "datasets: list, build a stand-in or check a real dataset, preview samples, synthesize rehearsal data"


def _datasets() -> list[str]:
    from ..core.registry import DATASETS

    return DATASETS.names()


def _synthetic_names(value: str) -> list[str]:
    from ..data.synthetic import DATASETS

    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in DATASETS]
    if unknown or not names:
        what = f"unknown dataset {unknown[0]!r}" if unknown else "no dataset named"
        raise argparse.ArgumentTypeError(f"{what}; give a comma-separated subset of {','.join(DATASETS)}")
    return names


def _add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, help="data root (default: $MEBQAT_DATA, else ./data)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    listing = actions.add_parser(
        "list", help="the registered datasets", description="List the registered datasets.", formatter_class=raw
    )
    listing.set_defaults(action=run_list)

    build = actions.add_parser(
        "build",
        help="build/cache a stand-in, or check a real dataset is present",
        formatter_class=raw,
        description="Stand-ins (digits, glyphs28, glyphs84): build the cache in <root>/standins/ (or reuse it) and "
        "print its classes, size and build time.\nReal datasets: load every split, printing its size; "
        "a missing dataset is an error that says where to put it.",
    )
    build.add_argument("name", choices=_datasets(), help="dataset name")
    _add_root(build)
    build.add_argument("--seed", type=int, default=0, help="stand-in build seed (default 0)")
    build.add_argument("--download", action="store_true", help="real datasets: download when absent")
    build.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="real datasets: skip the official checksums (files you built or re-packed yourself)",
    )
    build.set_defaults(action=run_build)

    preview = actions.add_parser(
        "preview",
        help="write a PNG grid of samples, one row per class",
        formatter_class=raw,
        description="Write a PNG grid of samples of one split, one row per class, titled with the dataset's name "
        "(and 'stand-in for ...' where it is one).",
    )
    preview.add_argument("name", choices=_datasets(), help="dataset name")
    preview.add_argument("--split", default="train", help="split to show (default: train)")
    _add_root(preview)
    preview.add_argument("--out", type=Path, help="PNG path (default: <name>-<split>.png)")
    preview.add_argument("--rows", type=positive_int, default=10, help="classes to show (default 10)")
    preview.add_argument("--cols", type=positive_int, default=10, help="samples per class (default 10)")
    preview.add_argument("--seed", type=int, default=0, help="stand-in build seed (default 0)")
    preview.add_argument(
        "--input-shape",
        type=int,
        nargs=3,
        metavar=("C", "H", "W"),
        help="digits: the input shape (e.g. 3 40 40 for SVHN's place)",
    )
    preview.set_defaults(action=run_preview)

    synthesize = actions.add_parser(
        "synthesize",
        help="write full-size synthetic CIFAR-10/SVHN/Omniglot/MiniImageNet for the paper-scale rehearsal",
        formatter_class=raw,
        description="Write CIFAR-10, SVHN, Omniglot and MiniImageNet at their real sizes, in their official file "
        "formats and layout, under --root, filled\nwith synthetic images (a class pattern plus noise): the paper's "
        "jobs run on them through the real loaders.\nEach folder is marked SYNTHETIC-REHEARSAL-DATA.txt; the loaders "
        "refuse it unless verify is off (data.verify: false).\nA complete set already there is kept; a folder "
        "holding anything else (a real dataset) is never overwritten.\nAbout 3.4 GiB in all, written in about 30 s "
        "(docs/data.md).",
    )
    synthesize.add_argument(
        "--root", type=Path, required=True, help="where to write (deliberately no default: never the real data root)"
    )
    synthesize.add_argument(
        "--only",
        type=_synthetic_names,
        metavar="NAMES",
        help="comma-separated subset of cifar10,svhn,omniglot,miniimagenet (default: all four)",
    )
    synthesize.set_defaults(action=run_synthesize)


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def run_list(args: argparse.Namespace) -> int:
    from ..core.registry import DATASETS

    for name in _datasets():
        info = DATASETS.get(name)
        shape = "x".join(map(str, info.input_shape))
        print(f"{name:<13} {info.kind:<10} {shape:<8} {info.title}")
        print(f"{'':13} {info.description}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from ..core.registry import DATASETS
    from ..data import build_standin, load_fewshot, load_supervised
    from ..data.registry import FEWSHOT_SPLITS, SUPERVISED_SPLITS

    info = DATASETS.get(args.name)
    if info.is_standin:
        summary = build_standin(args.name, args.root, args.seed)
        built = f"built in {summary['seconds']:.1f} s" if summary.get("seconds") is not None else "cached"
        print(f"{summary['title']}: {built}; {_megabytes(summary['bytes'])} in {', '.join(summary['paths'])}")
        classes = summary["classes"]
        if isinstance(classes, dict):
            print(
                "  classes per split: "
                + ", ".join(f"{s} {n}" for s, n in classes.items())
                + f"; {summary['samples_per_class']} samples per class; input {summary['input_shape']}"
            )
            print(f"  seed {summary['seed']}, fingerprint {summary['fingerprint'][:16]}")
        else:
            print(
                "  images per split: "
                + ", ".join(f"{s} {n}" for s, n in summary["splits"].items())
                + f"; {classes} classes; input shapes {summary['shapes']}"
            )
        return 0
    splits = FEWSHOT_SPLITS if info.kind == "fewshot" else ("trainval", "test")
    for split in splits:
        if info.kind == "fewshot":
            data = load_fewshot(args.name, split, args.root, download=args.download, verify=args.verify)
            print(f"{info.title} {split}: {data.num_classes} classes, {len(data)} images, input {data.input_shape}")
        else:
            data = load_supervised(args.name, split, args.root, download=args.download, verify=args.verify)
            print(f"{info.title} {split}: {len(data)} images, input {data.input_shape}")
    if info.kind == "supervised":
        val = load_supervised(args.name, "val", args.root, verify=args.verify)
        print(f"  (val = {len(val)} images held out of trainval, the rest is train; splits {SUPERVISED_SPLITS})")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from ..data.preview import preview

    out = args.out or Path(f"{args.name}-{args.split}.png")
    shape = tuple(args.input_shape) if args.input_shape else None
    path = preview(
        args.name,
        out,
        split=args.split,
        root=args.root,
        rows=args.rows,
        cols=args.cols,
        seed=args.seed,
        input_shape=shape,
    )
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


def run_synthesize(args: argparse.Namespace) -> int:
    import time

    from ..data.synthetic import Outcome, synthesize

    def done(outcome: Outcome) -> None:
        size = f"{outcome.images:,} images, {_megabytes(outcome.bytes)}"
        if outcome.written:
            print(f"{outcome.dataset}: wrote {outcome.folder} ({size}) in {outcome.seconds:.1f} s [{outcome.note}]")
        else:
            print(f"{outcome.dataset}: up to date, nothing to do: {outcome.folder} ({size}, {outcome.note})")

    started = time.perf_counter()
    outcomes = synthesize(args.root, args.only, on_done=done)
    total = sum(o.bytes for o in outcomes)
    print(
        f"synthetic rehearsal data in {args.root.resolve()}: {len(outcomes)} datasets, {_megabytes(total)}, "
        f"{time.perf_counter() - started:.1f} s; load it with verify off (data.verify: false, --no-verify)"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    return args.action(args)
