"""Raw answers: the status, headers and body behind any call, in both clients.

Two ways in, one mechanism (a context variable the transport appends each answer to):

* ``lago.with_raw_response.customers.get("acme")`` returns a :class:`RawResponse` instead of
  the model: ``.status``, ``.headers``, ``.content``, ``.json()`` and ``.parse()`` (the model
  the plain call returns). It mirrors every namespace and method of the client.
* ``with capture_responses() as captured:`` keeps the typed results of plain calls and
  records every answer received inside the block (retried attempts and each page of a
  pager included) in ``captured.responses``; ``captured.last`` is the latest.

Response headers carry nothing secret; the request's headers (and so the key) are never
recorded.
"""

from __future__ import annotations

import contextvars
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from ._errors import LagoError

__all__ = ["RawResponse", "ResponseCapture", "capture_responses"]

_NOT_PARSED = object()


class RawResponse:
    """One answer of the server, as received.

    Attributes:
        method: the request's HTTP method.
        path: the request's path below the API root (without the query).
        status: the HTTP status.
        headers: the answer's headers (case-insensitive, read-only).
        content: the answer's body, as bytes.
        attempt: which attempt of the call this answer came from (1 for the first).
    """

    __slots__ = ("_parsed", "attempt", "content", "headers", "method", "path", "status")

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        headers: Mapping[str, str],
        content: bytes,
        attempt: int,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(headers))
        self.content = content
        self.attempt = attempt
        self._parsed: Any = _NOT_PARSED

    def __repr__(self) -> str:
        return (
            f"<RawResponse {self.method} {self.path} -> {self.status}, {len(self.content)} bytes>"
        )

    @property
    def request_id(self) -> str | None:
        """The server's ``X-Request-Id`` for this answer, when it sent one."""
        return self.headers.get("X-Request-Id")

    def json(self) -> Any:
        """The body decoded as JSON (``None`` for an empty body)."""
        return orjson.loads(self.content) if self.content else None

    def parse(self) -> Any:
        """What the plain call returns for this answer (a model, a list, a pager...).

        Available on answers returned by ``with_raw_response``; an answer recorded by
        :func:`capture_responses` has no call result of its own (the call returned it).
        """
        if self._parsed is _NOT_PARSED:
            raise LagoError(
                "this answer was recorded by capture_responses(): the call itself returned "
                "the parsed result"
            )
        return self._parsed


class ResponseCapture:
    """The answers received inside a :func:`capture_responses` block, oldest first."""

    __slots__ = ("responses",)

    def __init__(self, limit: int | None) -> None:
        self.responses: deque[RawResponse] = deque(maxlen=limit)
        """Every answer kept (at most ``limit``, the latest ones)."""

    def __repr__(self) -> str:
        return f"<ResponseCapture {len(self.responses)} answer(s)>"

    def __len__(self) -> int:
        return len(self.responses)

    def __iter__(self) -> Iterator[RawResponse]:
        return iter(self.responses)

    @property
    def last(self) -> RawResponse:
        """The latest answer received; :class:`LagoError` when there is none."""
        if not self.responses:
            raise LagoError("no answer was received inside the capture_responses() block")
        return self.responses[-1]


CAPTURE: contextvars.ContextVar[ResponseCapture | None] = contextvars.ContextVar(
    "lago_capture", default=None
)
"""The capture the transport records answers into (read once per answer received)."""


@contextmanager
def capture_responses(limit: int | None = 1000) -> Iterator[ResponseCapture]:
    """Record every answer received inside the block, from any client, async or blocking.

    ::

        with capture_responses() as captured:
            customer = await lago.customers.get("acme")
        print(captured.last.status, captured.last.request_id)

    Calls keep returning their usual results; ``captured.responses`` holds the answers (the
    failed attempts a call retried and every page of a pager included), at most ``limit`` of
    them, the latest kept. Tasks started inside the block inherit it (an ingestor's batches
    too): keep the block around the calls of interest. Blocks nest; the innermost records.
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        from ._errors import LagoValidationError

        raise LagoValidationError("limit", f"must be a positive integer or None, got {limit!r}")
    capture = ResponseCapture(limit)
    token = CAPTURE.set(capture)
    try:
        yield capture
    finally:
        CAPTURE.reset(token)


def record(
    capture: ResponseCapture,
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    attempt: int,
) -> None:
    """Called by the transport for each answer received while a capture is active."""
    capture.responses.append(RawResponse(method, path, status, headers, content, attempt))


# -- with_raw_response ---------------------------------------------------------------------------


class RawResponseClient:
    """``lago.with_raw_response``: the client's namespaces, each call returning its answer.

    ``await lago.with_raw_response.plans.get("premium")`` sends what
    ``lago.plans.get("premium")`` sends and returns the :class:`RawResponse` of the last answer,
    whose ``.parse()`` gives the :class:`~lago_async.types.Plan`. A list method returns the
    answer of its first page (``.parse()`` is the pager). Errors raise as in the plain call.
    """

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        self._target = target

    def __repr__(self) -> str:
        return f"<with_raw_response of {self._target!r}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._target, name)
        if inspect.ismethod(value) or inspect.isfunction(value):
            return _raw_caller(value)
        if hasattr(value, "_client"):  # a namespace
            return RawResponseClient(value)
        raise AttributeError(f"with_raw_response has no call named {name!r}")


def _raw_caller(method: Callable[..., Any]) -> Callable[..., Awaitable[RawResponse]]:
    async def call(*args: Any, **kwargs: Any) -> RawResponse:
        with capture_responses(limit=1) as captured:
            result = method(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            else:
                first_page = getattr(result, "first_page", None)
                if first_page is None:
                    raise LagoError(f"{method.__name__} sends no request of its own")
                await first_page()
        raw = captured.last
        raw._parsed = result
        return raw

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call
