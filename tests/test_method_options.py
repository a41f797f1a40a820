"""A method's options are named, typed fields fixed when it is built (:class:`mebqat.methods.base.MethodOptions`),
while its registry entry stays the one owner of their names and defaults: every method's options dataclass has
exactly its entry's option names, a job's ``method:`` section fills them, and a dataclass that differs from its
entry is refused."""

from __future__ import annotations

import dataclasses

import pytest

from mebqat.core.config import resolve_job
from mebqat.core.registry import METHODS, MethodInfo, RegistryError
from mebqat.methods import create_method
from mebqat.methods.base import MethodOptions
from mebqat.methods.mebqat_supervised import MEBQATOptions, MEBQATSupervised


@pytest.mark.parametrize("info", list(METHODS), ids=lambda info: info.name)
def test_every_methods_options_dataclass_has_exactly_its_entrys_option_names(info):
    options_type = METHODS.load(info.name).options_type
    assert issubclass(options_type, MethodOptions) and options_type.__dataclass_params__.frozen
    assert {f.name for f in dataclasses.fields(options_type)} == set(info.options)
    options_type.check_entry(info)
    defaults = options_type.from_config(info, {})
    assert {name: getattr(defaults, name) for name in info.options} == {
        name: tuple(value) if isinstance(value, list) else value for name, value in info.options.items()
    }


def test_a_jobs_method_section_fills_the_options_and_they_cannot_change():
    config = resolve_job({"setup": "svhn_cnn8", "method": "mebqat", "scale": "smoke"})
    method = create_method(config, engine="sequential")
    assert method.options == MEBQATOptions(tasks_per_step=4, guaranteed=("(FP,FP)", "(1,1)"), kd=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        method.options.kd = False  # type: ignore[misc]
    config["method"]["kd"] = False
    assert create_method(config, engine="sequential").options.kd is False


def test_an_options_dataclass_that_differs_from_its_entry_is_refused():
    config = resolve_job({"setup": "svhn_cnn8", "method": "mebqat", "scale": "smoke"})
    entry = MethodInfo(
        "mebqat_renamed",
        impl=MEBQATSupervised,
        title="x",
        tables=("table2",),
        problem="supervised",
        options={"tasks_per_step": 4, "guaranteed": [], "distil": True},
    )
    with pytest.raises(RegistryError, match=r"MEBQATOptions has the fields \['guaranteed', 'kd', 'tasks_per_step'\]"):
        MEBQATSupervised(config, entry, "sequential")
