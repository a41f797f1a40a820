"""The SLURM plugin's job states made complete (mebqat/workflow/slurm_states.py), without a scheduler;
tests/test_slurm.py cancels a job on a real cluster."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import types

import pytest

from mebqat.workflow import slurm_states


def test_a_state_is_its_first_word():
    assert slurm_states.base_state("CANCELLED by 0") == "CANCELLED"
    assert slurm_states.base_state("CANCELLED by 1000") == "CANCELLED"
    assert [slurm_states.base_state(s) for s in ("COMPLETED", "TIMEOUT", "RUNNING", "")] == [
        "COMPLETED",
        "TIMEOUT",
        "RUNNING",
        "",
    ]


def fake_plugin(monkeypatch, states):
    plugin = types.ModuleType(slurm_states.PLUGIN)

    async def query_job_status(command, logger):
        return (None, None) if states is None else (dict(states), 0.01)

    plugin.query_job_status = query_job_status
    monkeypatch.setitem(sys.modules, slurm_states.PLUGIN, plugin)
    return plugin


def test_the_loaded_plugin_sees_cancelled_jobs_as_cancelled(monkeypatch):
    plugin = fake_plugin(monkeypatch, {"7": "CANCELLED by 0", "8": "COMPLETED", "9": "RUNNING"})
    assert slurm_states.install() and slurm_states.install()  # a second install wraps nothing twice
    wrapped = plugin.query_job_status
    assert getattr(wrapped, slurm_states.MARK).__name__ == "query_job_status"
    assert not hasattr(getattr(wrapped, slurm_states.MARK), slurm_states.MARK)
    states, seconds = asyncio.run(wrapped("sacct ...", None))
    assert states == {"7": "CANCELLED", "8": "COMPLETED", "9": "RUNNING"} and seconds == 0.01


def test_a_failed_query_stays_failed(monkeypatch):
    plugin = fake_plugin(monkeypatch, None)
    slurm_states.install()
    assert asyncio.run(plugin.query_job_status("sacct ...", None)) == (None, None)


def test_nothing_is_done_without_the_plugin_and_a_changed_plugin_is_named(monkeypatch):
    monkeypatch.delitem(sys.modules, slurm_states.PLUGIN, raising=False)
    assert slurm_states.install() is False
    monkeypatch.setitem(sys.modules, slurm_states.PLUGIN, types.ModuleType(slurm_states.PLUGIN))
    with pytest.raises(RuntimeError, match=r"no query_job_status: mebqat/workflow/slurm_states.py .* 2\.8\.0"):
        slurm_states.install()


@pytest.mark.skipif(importlib.util.find_spec(slurm_states.PLUGIN) is None, reason="the SLURM plugin is not installed")
def test_the_installed_plugin_has_what_the_wrapper_needs():
    """The plugin's check calls its module-level query_job_status and counts CANCELLED as a failure."""
    import inspect

    import snakemake_executor_plugin_slurm as plugin

    check = inspect.getsource(plugin.Executor.check_active_jobs)
    assert "await query_job_status(" in check and '"CANCELLED",' in check
    assert inspect.iscoroutinefunction(plugin.query_job_status)
