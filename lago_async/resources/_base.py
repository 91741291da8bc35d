"""What every resource shares: a handle on the client's transport and URL helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from .._convert import structure
from .._validate import require_str

if TYPE_CHECKING:
    from .._client import AsyncLago
    from .._transport import Transport

__all__ = ["AsyncResource", "path_id"]

T = TypeVar("T")


def path_id(value: str, field: str) -> str:
    """A path identifier, checked and URL-encoded (``/`` included)."""
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

    async def _fetch(
        self,
        method: str,
        path: str,
        key: str,
        cls: type[T],
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        timeout: float | None,
        max_retries: int | None,
    ) -> T:
        """Send one request and structure the answer's ``key`` into ``cls``."""
        data = await self._transport.request(
            method, path, params=params, body=body, timeout=timeout, max_retries=max_retries
        )
        return structure(data[key], cls)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        key: str,
        cls: type[T],
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout: float | None,
        max_retries: int | None,
        lenient: bool = False,
    ) -> T:
        """Send one request and structure the answer's ``key`` into ``cls``.

        With ``lenient``, an answer that does not carry ``key`` is structured whole (the spec
        shows a few answers unwrapped; the server wraps them).
        """
        data = await self._transport.request(
            method, path, params=params, body=body, timeout=timeout, max_retries=max_retries
        )
        if lenient and isinstance(data, Mapping) and key not in data:
            return structure(data, cls)
        return structure(data[key], cls)

    async def _call_raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout: float | None,
        max_retries: int | None,
    ) -> Any:
        """Send one request and return its decoded JSON answer as is (``None`` when empty)."""
        return await self._transport.request(
            method, path, params=params, body=body, timeout=timeout, max_retries=max_retries
        )
