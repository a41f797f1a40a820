"""Job states as snakemake-executor-plugin-slurm reads them, made complete.

The plugin (2.8.0, the newest release) polls ``sacct -X --format=JobIdRaw,State`` and compares each state
with a fixed list (``CANCELLED``, ``FAILED``, ``TIMEOUT``, ...). ``sacct`` writes a cancelled job as
``CANCELLED by <uid>``, which is in no list: the plugin takes the job for a running one and Snakemake waits
for it forever (SIGTERM does not end it either: Snakemake waits for its running jobs). ``squeue``'s
``%T`` writes the bare word, but the plugin uses ``sacct`` wherever accounting exists, even when told to use
``squeue``, if the controller forgets finished jobs in under 3 × its first status delay (120 s).

:func:`install` wraps the plugin's one query function so that every state reaches it as its first word
(``CANCELLED by 0`` → ``CANCELLED``): a cancelled job is then a failed job, which Snakemake retries or
reports, whichever status command is used. The Snakefile calls it; it changes nothing when the plugin is
not loaded (a local run).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

PLUGIN = "snakemake_executor_plugin_slurm"
MARK = "_mebqat_first_word_states"

Query = Callable[[str, Any], Awaitable[tuple[dict[str, str] | None, float | None]]]


def base_state(state: str) -> str:
    """The state word of a SLURM job state as sacct or squeue print it: ``CANCELLED by 0`` → ``CANCELLED``."""
    words = state.split()
    return words[0] if words else state


def first_word_states(query: Query) -> Query:
    """``query`` (the plugin's ``query_job_status``) with every job's state reduced to its first word."""

    async def wrapped(command: str, logger: Any) -> tuple[dict[str, str] | None, float | None]:
        states, seconds = await query(command, logger)
        if states is not None:
            states = {job: base_state(state) for job, state in states.items()}
        return states, seconds

    setattr(wrapped, MARK, query)
    return wrapped


def install() -> bool:
    """Wrap the loaded plugin's status query (once); False when the plugin is not loaded."""
    plugin = sys.modules.get(PLUGIN)
    if plugin is None:
        return False
    query = getattr(plugin, "query_job_status", None)
    if query is None:
        raise RuntimeError(
            f"{PLUGIN} {getattr(plugin, '__version__', '')} has no query_job_status: mebqat/workflow/slurm_states.py "
            f"was written for 2.8.0 (constraints.txt); install that version or adapt the module"
        )
    if not hasattr(query, MARK):
        # setattr, not an assignment: mypy knows the plugin only as a ModuleType, which has no such attribute
        setattr(plugin, "query_job_status", first_word_states(query))  # noqa: B010
    return True
