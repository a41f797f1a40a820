"""Retrying store calls that failed because another writer held the database.

MLflow sets SQLite's busy_timeout (20 s), so a lock error reaches us only after a long wait under heavy
contention; then backing off and trying again is the right answer. Every call wrapped here is either a
read or a write that SQLite rolled back as a whole, so repeating it cannot log anything twice.

``log_inputs`` has a second race: it looks the dataset (experiment, name, digest) up and inserts it when
missing, so two jobs of one experiment logging the same dataset for the first time can both miss it and
the later insert fails the unique constraint. Its transaction is rolled back; the retry finds the row the
other job inserted and links to it.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

ATTEMPTS = 8
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 15.0
_TRANSIENT_TEXT = ("database is locked", "database is busy", "database table is locked")
# Check-then-insert races of log_inputs (dataset rows are shared by an experiment's runs; input links by
# two publishers of the same run), see the module docstring. Input tags key on a fresh input id: no race.
_LOST_INSERT_RACE_TEXT = ("unique constraint failed: datasets.", "unique constraint failed: inputs.")


def is_transient(err: BaseException) -> bool:
    """A lock/busy error of SQLite, a lost insert race of ``log_inputs``, or a server that says it is
    temporarily unavailable."""
    text = str(err).lower()
    if any(marker in text for marker in _TRANSIENT_TEXT + _LOST_INSERT_RACE_TEXT):
        return True
    code = getattr(err, "error_code", None)
    # A SQL store reports every OperationalError (also "no such table") as TEMPORARILY_UNAVAILABLE;
    # only a server's 503 is transient by code alone.
    return code in ("TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED") and "operationalerror" not in text


def retrying(call: Callable[..., T], *args: object, attempts: int = ATTEMPTS, **kwargs: object) -> T:
    """``call(*args, **kwargs)``, repeated with jittered exponential backoff while it fails transiently."""
    delay = FIRST_DELAY_S
    for attempt in range(1, attempts + 1):
        try:
            return call(*args, **kwargs)
        except Exception as err:
            if attempt == attempts or not is_transient(err):
                raise
            print(
                f"mebqat.tracking: store busy ({str(err).splitlines()[0][:120]}); retry {attempt}/{attempts - 1} "
                f"in {delay:.1f}s",
                file=sys.stderr,
            )
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(2 * delay, MAX_DELAY_S)
    raise AssertionError("unreachable")
