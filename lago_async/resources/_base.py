"""What every resource shares: a handle on the client's transport and URL helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from .._convert import structure
from .._errors import APIResponseValidationError, LagoValidationError
from .._validate import apply_extras, require_str

if TYPE_CHECKING:
    from .._client import AsyncLago
    from .._transport import Transport

__all__ = ["AsyncResource", "parse", "path_id", "unwrap"]

T = TypeVar("T")


_DOT_SEGMENTS = frozenset({".", ".."})


def path_id(value: str, field: str) -> str:
    """A path identifier, checked and URL-encoded (``/`` included).

    ``.`` and ``..`` are refused rather than encoded: URL normalisation (``%2E`` is ``.``)
    in a proxy or the server would read them as "this folder" and "the parent folder", so
    that ``customers.get("..")`` could address another resource. Text that cannot be
    encoded (a lone surrogate) is refused too; both raise :class:`LagoValidationError`
    naming ``field``.
    """
    text = require_str(value, field)
    if text in _DOT_SEGMENTS:
        raise LagoValidationError(
            field, f"{text!r} cannot be an identifier: it would be read as a path segment"
        )
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:
        raise LagoValidationError(
            field, "must be valid Unicode text (it holds a lone surrogate)"
        ) from None


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

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout: float | None,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, Any] | None,
        extra_body: Mapping[str, Any] | None,
        decode: bool = True,
        ingest: bool = False,
    ) -> Any:
        """One request through the transport, with the call's extras merged in."""
        headers = None
        if extra_headers is not None or extra_query is not None or extra_body is not None:
            params, body, headers = apply_extras(
                method, params, body, extra_headers, extra_query, extra_body
            )
        return await self._transport.request(
            method,
            path,
            params=params,
            body=body,
            timeout=timeout,
            max_retries=max_retries,
            decode=decode,
            headers=headers,
            ingest=ingest,
        )

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
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> T:
        """Send one request and structure the answer's ``key`` into ``cls``.

        With ``lenient``, an answer that does not carry ``key`` is structured whole (the spec
        shows a few answers unwrapped; the server wraps them).
        """
        data = await self._send(
            method, path, params, body, timeout, max_retries, extra_headers, extra_query, extra_body
        )
        whole = lenient and isinstance(data, Mapping) and key not in data
        return parse(data, None if whole else key, cls, method=method, path=path)

    async def _call_one_or_many(
        self,
        method: str,
        path: str,
        *,
        one: str,
        many: str,
        cls: type[T],
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout: float | None,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> list[T]:
        """Send one request whose answer holds one object (``one``) or a list (``many``)."""
        data = await self._send(
            method, path, params, body, timeout, max_retries, extra_headers, extra_query, extra_body
        )
        if isinstance(data, Mapping) and data.get(many) is not None:
            return parse(data, many, list[cls], method=method, path=path)  # type: ignore[valid-type]
        return [parse(data, one, cls, method=method, path=path)]

    async def _call_text(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout: float | None,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> str:
        """Send one request and return its answer as text (a ``text/plain`` answer)."""
        raw = await self._send(
            method,
            path,
            params,
            body,
            timeout,
            max_retries,
            extra_headers,
            extra_query,
            extra_body,
            decode=False,
        )
        if not isinstance(raw, bytes):
            raise APIResponseValidationError("the answer is not text", method=method, path=path)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise APIResponseValidationError(
                "the answer is not UTF-8 text", method=method, path=path
            ) from None

    async def _call_raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        timeout: float | None,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON answer as is (``None`` when empty)."""
        return await self._send(
            method, path, params, body, timeout, max_retries, extra_headers, extra_query, extra_body
        )


def unwrap(data: Any, key: str, *, method: str, path: str) -> Any:
    """The object under ``key`` in a decoded answer, or APIResponseValidationError saying why not.

    Lago wraps every object in a key named after it (``{"customer": {...}}``); an answer
    without it (an empty body, ``{}``, a proxy's JSON) is not Lago's.
    """
    if data is None:
        raise APIResponseValidationError(
            f"the answer is empty, expected {key!r}", method=method, path=path
        )
    if not isinstance(data, Mapping) or data.get(key) is None:
        found = sorted(data)[:5] if isinstance(data, Mapping) else type(data).__name__
        raise APIResponseValidationError(
            f"the answer has no {key!r} (found {found})", method=method, path=path
        )
    return data[key]


def parse(data: Any, key: str | None, cls: type[T], *, method: str, path: str) -> T:
    """Structure the object under ``key`` (the whole answer when ``None``) into ``cls``,
    errors naming the request."""
    value = data if key is None else unwrap(data, key, method=method, path=path)
    try:
        return structure(value, cls)
    except APIResponseValidationError as exc:
        raise APIResponseValidationError(str(exc), method=method, path=path) from None
