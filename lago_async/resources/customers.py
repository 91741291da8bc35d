"""``lago.customers``: the people and companies you bill."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import types as _models
from .._pagination import AsyncPager
from .._validate import as_body, encode_json, require_list, require_str
from ._base import AsyncResource, path_id, unwrap

if TYPE_CHECKING:
    from ..types import (
        Address,
        AppliedCoupon,
        Customer,
        CustomerBillingConfiguration,
        CustomerCheckoutUrl,
        CustomerInput,
        CustomerProjectedUsage,
        CustomerUsage,
    )

__all__ = ["AsyncCustomers"]


class AsyncCustomers(AsyncResource):
    """Create (upsert), read, list and delete customers, and read their usage."""

    __slots__ = ()

    async def create(
        self,
        customer: CustomerInput | Mapping[str, Any] | None = None,
        /,
        *,
        external_id: str | None = None,
        name: str | None = None,
        firstname: str | None = None,
        lastname: str | None = None,
        email: str | None = None,
        currency: str | None = None,
        country: str | None = None,
        address_line1: str | None = None,
        address_line2: str | None = None,
        city: str | None = None,
        state: str | None = None,
        zipcode: str | None = None,
        phone: str | None = None,
        url: str | None = None,
        legal_name: str | None = None,
        legal_number: str | None = None,
        logo_url: str | None = None,
        timezone: str | None = None,
        account_type: str | None = None,
        customer_type: str | None = None,
        billing_entity_code: str | None = None,
        tax_identification_number: str | None = None,
        tax_codes: Sequence[str] | None = None,
        net_payment_term: int | None = None,
        finalize_zero_amount_invoice: str | None = None,
        billing_configuration: CustomerBillingConfiguration | Mapping[str, Any] | None = None,
        shipping_address: Address | Mapping[str, Any] | None = None,
        integration_customers: Sequence[Any] | None = None,
        metadata: Sequence[Any] | None = None,
        skip_invoice_custom_sections: bool | None = None,
        invoice_custom_section_codes: Sequence[str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Customer:
        """Create a customer, or update the one with this ``external_id`` (``POST /customers``).

        Give the fields as keyword arguments, or a :class:`CustomerInput` or a mapping as the
        first argument. Fields left as ``None`` are not sent (to send an explicit ``null``,
        give a mapping).
        """
        fields = {
            "external_id": external_id,
            "name": name,
            "firstname": firstname,
            "lastname": lastname,
            "email": email,
            "currency": currency,
            "country": country,
            "address_line1": address_line1,
            "address_line2": address_line2,
            "city": city,
            "state": state,
            "zipcode": zipcode,
            "phone": phone,
            "url": url,
            "legal_name": legal_name,
            "legal_number": legal_number,
            "logo_url": logo_url,
            "timezone": timezone,
            "account_type": account_type,
            "customer_type": customer_type,
            "billing_entity_code": billing_entity_code,
            "tax_identification_number": tax_identification_number,
            "tax_codes": _listed(tax_codes, "customer.tax_codes"),
            "net_payment_term": net_payment_term,
            "finalize_zero_amount_invoice": finalize_zero_amount_invoice,
            "billing_configuration": billing_configuration,
            "shipping_address": shipping_address,
            "integration_customers": _listed(
                integration_customers, "customer.integration_customers"
            ),
            "metadata": _listed(metadata, "customer.metadata"),
            "skip_invoice_custom_sections": skip_invoice_custom_sections,
            "invoice_custom_section_codes": _listed(
                invoice_custom_section_codes, "customer.invoice_custom_section_codes"
            ),
        }
        body = as_body(customer, fields, field="customer", required=("external_id",))
        return await self._fetch(
            "POST",
            "/customers",
            "customer",
            _models.Customer,
            body=encode_json({"customer": body}),
            timeout=timeout,
            max_retries=max_retries,
        )

    async def get(
        self,
        external_id: str,
        /,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Customer:
        """Fetch a customer by its ``external_id`` (``GET /customers/{external_id}``)."""
        return await self._fetch(
            "GET",
            f"/customers/{path_id(external_id, 'external_id')}",
            "customer",
            _models.Customer,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list(
        self,
        *,
        account_type: Sequence[str] | None = None,
        billing_entity_codes: Sequence[str] | None = None,
        search_term: str | None = None,
        countries: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        zipcodes: Sequence[str] | None = None,
        currencies: Sequence[str] | None = None,
        has_tax_identification_number: bool | None = None,
        metadata: Mapping[str, str] | None = None,
        customer_type: str | None = None,
        has_customer_type: bool | None = None,
        page: int | None = None,
        per_page: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncPager[Customer]:
        """Iterate over customers (``GET /customers``) across all pages.

        ``metadata`` filters on metadata values (``{"is_synced": "true"}``; an empty value
        matches customers without that key).
        """
        params = {
            "account_type[]": account_type,
            "billing_entity_codes[]": billing_entity_codes,
            "search_term": search_term,
            "countries[]": countries,
            "states[]": states,
            "zipcodes[]": zipcodes,
            "currencies[]": currencies,
            "has_tax_identification_number": has_tax_identification_number,
            "metadata": metadata,
            "customer_type": customer_type,
            "has_customer_type": has_customer_type,
            "per_page": per_page,
        }
        return self._client._pager(
            "/customers",
            params,
            key="customers",
            item_type=_models.Customer,
            page=page,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def delete(
        self,
        external_id: str,
        /,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Customer:
        """Delete a customer (``DELETE /customers/{external_id}``) and return it."""
        return await self._fetch(
            "DELETE",
            f"/customers/{path_id(external_id, 'external_id')}",
            "customer",
            _models.Customer,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def current_usage(
        self,
        external_customer_id: str,
        /,
        *,
        external_subscription_id: str,
        apply_taxes: bool | None = None,
        charge_id: str | None = None,
        charge_code: str | None = None,
        billable_metric_code: str | None = None,
        group: Mapping[str, str] | None = None,
        full_usage: bool | None = None,
        filter_by_presentation: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> CustomerUsage:
        """Usage of the current billing period of one subscription.

        ``GET /customers/{external_customer_id}/current_usage``. ``group`` filters by pricing
        group (``{"cloud": "aws"}``); ``full_usage`` needs a charge or group filter.
        """
        params = {
            "external_subscription_id": require_str(
                external_subscription_id, "external_subscription_id"
            ),
            "apply_taxes": apply_taxes,
            "charge_id": charge_id,
            "charge_code": charge_code,
            "billable_metric_code": billable_metric_code,
            "group": group,
            "full_usage": full_usage,
            "filter_by_presentation": filter_by_presentation,
        }
        return await self._fetch(
            "GET",
            f"/customers/{path_id(external_customer_id, 'external_customer_id')}/current_usage",
            "customer_usage",
            _models.CustomerUsage,
            params=params,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def projected_usage(
        self,
        external_customer_id: str,
        /,
        *,
        external_subscription_id: str,
        apply_taxes: bool | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> CustomerProjectedUsage:
        """Current usage and its projection to the end of the billing period.

        ``GET /customers/{external_customer_id}/projected_usage``.
        """
        params = {
            "external_subscription_id": require_str(
                external_subscription_id, "external_subscription_id"
            ),
            "apply_taxes": apply_taxes,
        }
        return await self._fetch(
            "GET",
            f"/customers/{path_id(external_customer_id, 'external_customer_id')}/projected_usage",
            "customer_projected_usage",
            _models.CustomerProjectedUsage,
            params=params,
            timeout=timeout,
            max_retries=max_retries,
        )

    def past_usage(
        self,
        external_customer_id: str,
        /,
        *,
        external_subscription_id: str,
        billable_metric_code: str | None = None,
        periods_count: int | None = None,
        page: int | None = None,
        per_page: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncPager[CustomerUsage]:
        """Iterate over the usage of past billing periods, one item per period.

        ``GET /customers/{external_customer_id}/past_usage``.
        """
        params = {
            "external_subscription_id": require_str(
                external_subscription_id, "external_subscription_id"
            ),
            "billable_metric_code": billable_metric_code,
            "periods_count": periods_count,
            "per_page": per_page,
        }
        return self._client._pager(
            f"/customers/{path_id(external_customer_id, 'external_customer_id')}/past_usage",
            params,
            key="usage_periods",
            item_type=_models.CustomerUsage,
            page=page,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def checkout_url(
        self,
        external_customer_id: str,
        /,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> CustomerCheckoutUrl:
        """Generate a payment-provider checkout URL for the customer.

        ``POST /customers/{external_customer_id}/checkout_url``.
        """
        return await self._fetch(
            "POST",
            f"/customers/{path_id(external_customer_id, 'external_customer_id')}/checkout_url",
            "customer",
            _models.CustomerCheckoutUrl,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def portal_url(
        self,
        external_customer_id: str,
        /,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> str:
        """An embeddable customer-portal URL (``GET /customers/{id}/portal_url``)."""
        path = f"/customers/{path_id(external_customer_id, 'external_customer_id')}/portal_url"
        data = await self._transport.request("GET", path, timeout=timeout, max_retries=max_retries)
        customer = unwrap(data, "customer", method="GET", path=path)
        return str(unwrap(customer, "portal_url", method="GET", path=path))

    def applied_coupons(
        self,
        external_customer_id: str,
        /,
        *,
        status: str | None = None,
        coupon_code: Sequence[str] | None = None,
        page: int | None = None,
        per_page: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncPager[AppliedCoupon]:
        """Iterate over the coupons applied to a customer (``active`` or ``terminated``).

        ``GET /customers/{external_customer_id}/applied_coupons``.
        """
        params = {"status": status, "coupon_code[]": coupon_code, "per_page": per_page}
        return self._client._pager(
            f"/customers/{path_id(external_customer_id, 'external_customer_id')}/applied_coupons",
            params,
            key="applied_coupons",
            item_type=_models.AppliedCoupon,
            page=page,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def delete_applied_coupon(
        self,
        external_customer_id: str,
        applied_coupon_id: str,
        /,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AppliedCoupon:
        """Remove a coupon applied to a customer and return it.

        ``DELETE /customers/{external_customer_id}/applied_coupons/{applied_coupon_id}``.
        """
        customer = path_id(external_customer_id, "external_customer_id")
        coupon = path_id(applied_coupon_id, "applied_coupon_id")
        return await self._fetch(
            "DELETE",
            f"/customers/{customer}/applied_coupons/{coupon}",
            "applied_coupon",
            _models.AppliedCoupon,
            timeout=timeout,
            max_retries=max_retries,
        )


def _listed(value: Sequence[Any] | None, field: str) -> list[Any] | None:
    return None if value is None else require_list(value, field, "value")
