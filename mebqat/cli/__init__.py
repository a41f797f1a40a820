"""The ``mebqat`` command. Each subcommand is a module with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; adding one is a module plus one entry in :data:`COMMANDS`.

Errors end the command with one line on stderr that names the culprit (``mebqat <command>: error: ...``)
and a non-zero exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import sys
from types import ModuleType
from typing import NoReturn

from .. import __version__
from . import data, describe, evaluate, rehearse, run, tables, track, train

COMMANDS: list[ModuleType] = [run, train, evaluate, rehearse, data, describe, tables, track]
EXIT_ERROR, EXIT_INTERNAL, EXIT_STOPPED = 2, 1, 130


class Parser(argparse.ArgumentParser):
    """A refused flag is one line that names it and where the help is, not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mebqat", description="MEBQAT reproduction harness (arXiv 2207.10188).")
    parser.add_argument("--version", action="version", version=f"mebqat {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.NAME,
            help=command.HELP,
            description=command.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


OS_HINTS = {
    errno.EACCES: "choose a location you may write, or fix its permissions",
    errno.EPERM: "choose a location you may write, or fix its permissions",
    errno.EROFS: "the file system is read-only: choose another location",
    errno.ENOSPC: "the disk is full: free space or choose another location (nothing half-written was kept; a "
    "job run again resumes from its last checkpoint)",
    errno.EDQUOT: "the disk quota is exhausted: free space or choose another location",
    errno.EFBIG: "the file outgrew the size this process may write (ulimit -f): raise the limit (nothing "
    "half-written was kept)",
    errno.ENOTDIR: "a path component is a file, not a directory: choose another path",
    errno.EISDIR: "a directory is where a file was expected: choose another path",
    errno.ENOENT: "it does not exist: check the path",
}


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno in OS_HINTS:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}: {OS_HINTS[err.errno]}"
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, (ValueError, OSError, RuntimeError)) else f"{type(err).__name__}: {text}"


def _timing_report() -> None:
    """With $MEBQAT_TIMING_FILE set, where the command's CPU time went (benchmarks/job_overhead.py)."""
    import os

    if os.environ.get("MEBQAT_TIMING_FILE"):
        from ..engine import timing

        timing.write_report()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    command = next((a for a in argv if a in {c.NAME for c in COMMANDS}), None)
    where = f"mebqat {command}" if command else "mebqat"
    args: argparse.Namespace | None = None
    try:
        args = build_parser().parse_args(argv)
        try:
            return int(args.run(args) or 0)
        finally:
            _timing_report()
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except KeyboardInterrupt:
        print(f"{where}: stopped", file=sys.stderr)
        return EXIT_STOPPED
    except SystemExit:
        raise
    except (ValueError, OSError, RuntimeError) as err:  # bad input, files, divergence: the message says what
        if debug:
            raise
        print(f"{where}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:
        if debug:
            raise
        from ..tracking.store_problems import explain

        store_line = explain(err, getattr(args, "uri", None))
        if store_line is not None:
            print(f"{where}: error: {store_line}", file=sys.stderr)
            return EXIT_ERROR
        print(f"{where}: internal error: {_one_line(err)} (run again with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
