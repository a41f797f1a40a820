"""The ``mebqat`` command. Each subcommand is a module with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; adding one is a module plus one entry in :data:`COMMANDS`."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from .. import __version__
from . import data, describe, evaluate, run, tables, track, train

COMMANDS: list[ModuleType] = [run, train, evaluate, data, describe, tables, track]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mebqat", description="MEBQAT reproduction harness (arXiv 2207.10188).")
    parser.add_argument("--version", action="version", version=f"mebqat {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"mebqat {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
