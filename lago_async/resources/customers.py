"""``lago.customers``: the hand-written part of the customers namespace.

Every operation is generated (``_generated/customers.py``); this subclass only changes
:meth:`portal_url` to return the URL itself rather than a one-field model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._base import path_id, unwrap
from ._generated.customers import AsyncCustomersBase

__all__ = ["AsyncCustomers"]


class AsyncCustomers(AsyncCustomersBase):
    """Customers: upsert, get, list, delete, usage, coupons, wallets and portal/checkout URLs.

    Customer-scoped lists are methods here (``lago.customers.invoices("acme")``); customer
    wallets and payment methods are sub-namespaces (``lago.customers.wallets.list("acme")``).
    """

    __slots__ = ()

    async def portal_url(  # type: ignore[override]
        self,
        external_customer_id: str,
        /,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> str:
        """An embeddable customer-portal URL (``GET /customers/{id}/portal_url``)."""
        path = f"/customers/{path_id(external_customer_id, 'external_customer_id')}/portal_url"
        data = await self._send(
            "GET", path, None, None, timeout, max_retries, extra_headers, extra_query, extra_body
        )
        customer = unwrap(data, "customer", method="GET", path=path)
        return str(unwrap(customer, "portal_url", method="GET", path=path))
