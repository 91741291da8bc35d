"""Resource namespaces: thin coroutines over the transport.

The namespace classes are generated from Lago's OpenAPI document into ``_generated`` (by
``tools/generate_api.py``); behaviour the document cannot describe lives in hand-written
subclasses here (``events.py``, ``customers.py``), which the client uses instead. Every name
loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .customers import AsyncCustomers
    from .events import AsyncEvents

__all__ = ["AsyncCustomers", "AsyncEvents"]

_MODULES = {"AsyncCustomers": ".customers", "AsyncEvents": ".events"}


def __getattr__(name: str) -> Any:
    module_name = _MODULES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value
