"""Print, one per line, the uv arguments that give uv the package sources pip is configured with.

    python scripts/pip_sources.py          # reads `python -m pip config list`

uv reads neither pip.conf nor PIP_* variables, so on a machine whose pip is pointed at a mirror, a local
index or a wheel directory (scripts/setup_env.sh), uv would otherwise go to PyPI alone. For each option pip
takes the value of the most specific place it is set (environment, then the [install] section, then
[global]); values with several entries are separated by whitespace, as pip splits them.
"""

from __future__ import annotations

import ast
import subprocess
import sys

UV_FLAGS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}
PRECEDENCE = (":env:", "install", "global")


def uv_arguments(listing: str) -> list[str]:
    """The uv arguments for the output of ``pip config list`` (lines ``section.option='value'``)."""
    chosen: dict[str, tuple[int, str]] = {}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        section, _, option = key.rpartition(".")
        if not sep or option not in UV_FLAGS or section not in PRECEDENCE:
            continue
        rank = PRECEDENCE.index(section)
        if option not in chosen or rank < chosen[option][0]:
            value = ast.literal_eval(raw) if raw[:1] in ("'", '"') else raw
            chosen[option] = (rank, str(value))
    arguments = []
    for option, flag in UV_FLAGS.items():
        for item in chosen.get(option, (0, ""))[1].split():
            arguments += [flag, item]
    return arguments


def main() -> int:
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for argument in uv_arguments(listing):  # nothing at all when pip has no sources configured
        print(argument)
    return 0


if __name__ == "__main__":
    sys.exit(main())
