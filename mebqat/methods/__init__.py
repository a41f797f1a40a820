"""Methods: one contract (:class:`~mebqat.methods.base.Method`) for every table's methods; the registry
entries (metadata) are in :mod:`mebqat.core.catalog`, the implementations named there are imported on use."""

from ..core.registry import METHODS, MethodInfo
from .base import Evaluation, Method, create_method


def get_method(name: str) -> MethodInfo:
    return METHODS.get(name)


def available_methods(problem: str | None = None) -> list[str]:
    return METHODS.names(lambda info: problem is None or info.problem == problem)


__all__ = ["Evaluation", "Method", "MethodInfo", "available_methods", "create_method", "get_method"]
