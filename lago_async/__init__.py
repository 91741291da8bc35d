"""Async-first Python SDK for Lago, the open-source usage-based billing API.

    from lago_async import AsyncLago

    async with AsyncLago(api_key="...") as lago:
        await lago.events.create(transaction_id="tx-1", code="storage",
                                 external_subscription_id="sub_1", properties={"gb": 10})

The blocking twin of every name lives in :mod:`lago_sync`.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._client import DEFAULT_BATCH_LIMIT, LAGO_CLOUD_INGEST_URL, AsyncLago
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
    SpoolError,
    SpoolLockedError,
    UnprocessableEntityError,
)
from ._pagination import AsyncPager, Page
from ._raw import RawResponse, ResponseCapture, capture_responses
from ._sentinel import NOT_GIVEN, NotGiven
from ._txid import transaction_id
from ._version import __version__
from .types import __all__ as _types_all

if TYPE_CHECKING:
    from ._ingest import (
        EventIngestor,
        FailedEvent,
        IngestorClosed,
        IngestQueueFull,
        IngestStats,
        RejectedEvent,
    )
    from .types import *  # noqa: F403

__all__ = [
    "DEFAULT_BATCH_LIMIT",
    "LAGO_CLOUD_INGEST_URL",
    "NOT_GIVEN",
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
    "NotGiven",
    "Page",
    "PermissionDeniedError",
    "RateLimitError",
    "RawResponse",
    "RejectedEvent",
    "ResponseCapture",
    "SpoolError",
    "SpoolLockedError",
    "UnprocessableEntityError",
    "__version__",
    "capture_responses",
    "transaction_id",
    *_types_all,
]

_INGEST_NAMES = frozenset(
    {
        "EventIngestor",
        "FailedEvent",
        "IngestQueueFull",
        "IngestStats",
        "IngestorClosed",
        "RejectedEvent",
    }
)


def __getattr__(name: str) -> Any:
    # Models and the ingestor load on first use, which keeps `import lago_async` cheap.
    if name in _INGEST_NAMES:
        module = importlib.import_module("._ingest", __name__)
    elif name in _types_all:
        module = importlib.import_module(".types", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value
