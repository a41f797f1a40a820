"""Reading back what users and the project write — YAML and JSON files, ``--set`` values — with one clear
error naming the file (or flag), the problem and the fix, instead of a parser's traceback.

YAML numbers are read the way a Python user types them: ``1e30`` and ``1e-3`` are floats (YAML 1.1, which
PyYAML follows, would read them as strings and ``1.0e+30`` as the only float spelling).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class InputError(ValueError):
    """Bad input, with the culprit, the problem and the fix in one line."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:(?:[0-9][0-9_]*)?\.[0-9_]*|[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789."),
)


class HugeNumber(yaml.constructor.ConstructorError):
    """An integer with more digits than Python reads from text (``sys.get_int_max_str_digits()``)."""

    def __init__(self, digits: int, mark: Any) -> None:
        super().__init__(None, None, f"an integer of {digits} digits is beyond any sane value", mark)
        self.digits = digits

    def where(self) -> str:
        """``an integer of 100000 digits at line 3, column 9 is beyond any sane value``."""
        mark = self.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"an integer of {self.digits} digits{at} is beyond any sane value"


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:  # Python's int digits limit: the node is its own digits
        raise HugeNumber(sum(c.isdigit() for c in str(node.value)), node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)


def shown_text(text: str, limit: int = 60) -> str:
    """``text`` for a message, cut to ``limit`` characters with its length said."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def read_text(path: str | Path, what: str) -> str:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if path.is_dir():
        raise InputError(f"{what} {path} is a directory, not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{what} {path} is not a UTF-8 text file (a binary file, or another encoding?): save it as UTF-8 text"
        ) from None
    except OSError as err:
        raise InputError(f"{what} {path} cannot be read ({err.strerror}): check its permissions") from None


def read_yaml(path: str | Path, what: str = "file", expect: type | None = dict) -> Any:
    text = read_text(path, what)
    try:
        content = parse_yaml(text)
    except HugeNumber as err:
        raise InputError(f"{what} {path}: {err.where()}: give a sane number") from None
    except yaml.YAMLError as err:
        raise InputError(f"{what} {path} is not valid YAML ({_one_line(err)}): fix its syntax") from None
    _check_type(content, expect, f"{what} {path}")
    return content


def read_json(path: str | Path, what: str = "file", expect: type | None = dict) -> Any:
    text = read_text(path, what)
    try:
        content = json.loads(text)
    except ValueError as err:
        raise InputError(
            f"{what} {path} is not valid JSON ({_one_line(err)}): it was cut short or overwritten; "
            f"re-run the step that writes it"
        ) from None
    _check_type(content, expect, f"{what} {path}")
    return content


def read_json_lines(path: str | Path, what: str, check: Callable[[Any], str | None] | None = None) -> list[Any]:
    """One JSON value per non-empty line; ``check(record)`` returns a problem or None."""
    records = []
    for number, line in enumerate(read_text(path, what).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise InputError(
                f"{what} {path} line {number} is not valid JSON ({_one_line(err)}): it was cut short "
                f"or edited; delete the run directory's files or re-run the job with --replace-stale"
            ) from None
        problem = check(record) if check else None
        if problem:
            raise InputError(f"{what} {path} line {number}: {problem}")
        records.append(record)
    return records


def _check_type(content: Any, expect: type | None, where: str) -> None:
    if expect is not None and not isinstance(content, expect):
        kinds: dict[type, str] = {dict: "a mapping (key: value lines)", list: "a list"}
        kind = kinds.get(expect, expect.__name__)
        raise InputError(f"{where} must hold {kind}, got {type(content).__name__}")


def parse_assignment(text: str, flag: str) -> tuple[list[str], Any]:
    """``key.path=VALUE`` (VALUE is YAML) of a command-line flag."""
    if "=" not in text:
        raise InputError(f"{flag} {text!r} must look like key.path=value, e.g. {flag} train.epochs=3")
    key, value = text.split("=", 1)
    path = [part.strip() for part in key.split(".")]
    if not all(path):
        raise InputError(f"{flag} {text!r}: the key {key!r} has an empty part; write key.path=value")
    try:
        return path, parse_yaml(value)
    except HugeNumber as err:
        raise InputError(
            f"{flag} {key}: the value is an integer of {err.digits} digits, beyond any sane value of {key}: "
            f"give a number such as {flag} {key}=3"
        ) from None
    except yaml.YAMLError as err:
        raise InputError(
            f"{flag} {shown_text(text)!r}: the value is not valid YAML ({_one_line(err)}); quote text values, "
            f"e.g. {flag} '{key}=\"...\"'"
        ) from None
