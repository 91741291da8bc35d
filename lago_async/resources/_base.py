"""What every resource shares: a handle on the client's transport and URL helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from .._client import AsyncLago
    from .._transport import Transport

__all__ = ["AsyncResource", "path_id"]


def path_id(value: str, field: str) -> str:
    """A path identifier, checked and URL-encoded (``/`` included)."""
    from .._validate import require_str

    return quote(require_str(value, field), safe="")


class AsyncResource:
    """Base of the resource namespaces (``lago.events``, ``lago.customers``...)."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncLago) -> None:
        self._client = client

    @property
    def _transport(self) -> Transport:
        return self._client._transport

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
