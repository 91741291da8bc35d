"""The exception hierarchy.

``LagoError`` is the root of everything this SDK raises on purpose::

    LagoError
    ├── LagoValidationError          bad input caught before anything is sent
    ├── APIResponseValidationError   an answer that does not have the documented shape
    ├── SpoolError                   the ingestor's spool cannot be opened or written
    │   └── SpoolLockedError         another live ingestor holds the spool
    ├── APIConnectionError           the request did not get an answer
    │   └── APITimeoutError
    └── APIError                     the server answered with an error status
        ├── BadRequestError          400
        ├── AuthenticationError      401
        ├── PermissionDeniedError    403
        ├── NotFoundError            404
        ├── UnprocessableEntityError 422
        ├── RateLimitError           429
        └── InternalServerError      5xx

Messages never contain the API key: errors carry the method and the path of the request,
never its headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "InternalServerError",
    "LagoError",
    "LagoValidationError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "SpoolError",
    "SpoolLockedError",
    "UnprocessableEntityError",
]


class LagoError(Exception):
    """Base class of every error raised by the SDK."""


class LagoValidationError(LagoError, ValueError):
    """Input that cannot be sent: raised before any request, naming the offending field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        """Dotted path of the offending input, e.g. ``events[3].code``."""
        super().__init__(f"{field}: {message}")


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SpoolError(LagoError):
    """The event ingestor's spool cannot be opened or written (or is closed)."""


class SpoolLockedError(SpoolError):
    """Another live ingestor, in this process or another, holds the spool."""

    def __init__(self, path: str) -> None:
        self.path = path
        """The spool file that is in use."""
        super().__init__(
            f"the spool {path} is in use by another live ingestor (its lock file "
            f"{path}.lock is held); one spool serves one ingestor at a time"
        )


class APIResponseValidationError(LagoError):
    """A successful answer that is not what Lago sends: not JSON, or without the expected
    object, or lacking a field the API documents as always present.

    For a write (POST, PUT, PATCH, DELETE) the message says the request may have been applied:
    the server answered 2xx, so it may have done the work before something in between (a
    proxy, a load balancer) replaced its answer.
    """

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        self.method = method
        """The request's method, when known."""
        self.path = path
        """The request's path, when known."""
        text = f"{message} ({method} {path})" if method else message
        if method in _WRITES:
            text += "; the request may have been applied"
        super().__init__(text)


class APIConnectionError(LagoError):
    """The request could not be completed: connection refused, reset or dropped.

    The message names the host, the port and the reason; the aiohttp exception behind it is
    not chained, since it carries the request's headers (the API key among them).
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", attempts: int = 1
    ) -> None:
        self.method = method
        self.path = path
        self.attempts = attempts
        """How many times the request was sent."""
        where = f" ({method} {path})" if method else ""
        super().__init__(f"{message}{where}")


class APITimeoutError(APIConnectionError):
    """The request timed out before the server answered."""


class APIError(LagoError):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
        code: Lago's machine-readable code (``customer_not_found``, ``validation_errors``...),
            or ``None`` when the body has none.
        error_details: Lago's per-field details (``{"transaction_id": ["value_already_exist"]}``),
            an empty dict when absent.
        body: the decoded JSON body (or the raw text when it is not JSON).
        method, path: the request that failed.
        headers: the response headers.
        attempts: how many times the request was sent (retries included).
    """

    def __init__(
        self,
        status: int,
        body: Any,
        *,
        method: str = "",
        path: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.method = method
        self.path = path
        self.headers: Mapping[str, str] = headers or {}
        self.attempts = 1
        """How many times the request was sent before this answer (set by the transport)."""
        parsed = body if isinstance(body, Mapping) else {}
        code = parsed.get("code")
        self.code: str | None = code if isinstance(code, str) else None
        details = parsed.get("error_details")
        self.error_details: dict[str, Any] = dict(details) if isinstance(details, Mapping) else {}
        error = parsed.get("error")
        self.error: str | None = error if isinstance(error, str) else None
        super().__init__(self._message())

    def add_note_to_message(self, note: str) -> None:
        """Append a hint for humans to the message (``str(error)``)."""
        self.args = (f"{self.args[0]} ({note})", *self.args[1:])

    def _message(self) -> str:
        parts = [f"{self.status}"]
        if self.error:
            parts.append(self.error)
        if self.code:
            parts.append(f"[{self.code}]")
        text = " ".join(parts)
        if self.method:
            text += f" on {self.method} {self.path}"
        if self.error_details:
            text += f": {_short(self.error_details)}"
        elif not isinstance(self.body, Mapping) and self.body:
            text += f": {_short(self.body)}"
        return text


def _short(value: Any, limit: int = 500) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BadRequestError(APIError):
    """400: the request was malformed."""


class AuthenticationError(APIError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIError):
    """403: the key may not perform this action (or the feature is not in the plan)."""


class NotFoundError(APIError):
    """404: the object does not exist (``code`` says which, e.g. ``customer_not_found``)."""


class UnprocessableEntityError(APIError):
    """422: the input was refused; ``error_details`` says why, per field or per batch index."""


class RateLimitError(APIError):
    """429: too many requests; ``reset_after`` gives the server's hint in seconds, if any."""

    @property
    def reset_after(self) -> float | None:
        """Seconds until the rate limit resets, from ``Retry-After`` or ``X-RateLimit-Reset``."""
        from ._transport import retry_hint

        return retry_hint(self.headers)


class InternalServerError(APIError):
    """5xx: the server failed."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_for_status(
    status: int,
    body: Any,
    *,
    method: str = "",
    path: str = "",
    headers: Mapping[str, str] | None = None,
) -> APIError:
    """Build the typed error for an error ``status``."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIError
    return cls(status, body, method=method, path=path, headers=headers)
