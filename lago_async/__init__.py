"""Async-first Python SDK for Lago, the open-source usage-based billing API.

    from lago_async import AsyncLago

    async with AsyncLago(api_key="...") as lago:
        await lago.events.create(transaction_id="tx-1", code="storage",
                                 external_subscription_id="sub_1", properties={"gb": 10})

The blocking twin of every name lives in :mod:`lago_sync`.
"""

from ._client import DEFAULT_BATCH_LIMIT, AsyncLago
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    LagoError,
    LagoValidationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from ._ingest import (
    EventIngestor,
    FailedEvent,
    IngestorClosed,
    IngestQueueFull,
    IngestStats,
    RejectedEvent,
)
from ._pagination import AsyncPager, Page
from ._version import __version__
from .types import *  # noqa: F403
from .types import __all__ as _types_all

__all__ = [
    "DEFAULT_BATCH_LIMIT",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AsyncLago",
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "EventIngestor",
    "FailedEvent",
    "IngestQueueFull",
    "IngestStats",
    "IngestorClosed",
    "InternalServerError",
    "LagoError",
    "LagoValidationError",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "RateLimitError",
    "RejectedEvent",
    "UnprocessableEntityError",
    "__version__",
    *_types_all,
]
