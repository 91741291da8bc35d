"""Resource namespaces: thin coroutines over the transport, one module per API tag."""

from .customers import AsyncCustomers
from .events import AsyncEvents

__all__ = ["AsyncCustomers", "AsyncEvents"]
