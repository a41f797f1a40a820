"""Methods: one registry for every table's methods. Adding one is a module plus one line below."""

from .registry import MethodEntry, available_methods, get_method, register_method

# Table 2
from . import mebqat_supervised  # noqa: E402,F401
from baselines import qat, adabits, apdnn  # noqa: E402,F401
# Tables 4 and 5
from . import mebqat_fewshot  # noqa: E402,F401
from baselines import fomaml, protonet  # noqa: E402,F401

__all__ = ["MethodEntry", "available_methods", "get_method", "register_method"]
